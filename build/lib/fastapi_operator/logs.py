"""Logging: plain text, or one JSON object per line. Records carry namespace and name through
`extra`; messages never include env values or Secret data, only kinds and names."""

from __future__ import annotations

import json
import logging
from typing import Any

# `name` is taken by LogRecord itself, so the app's name travels as `app` and is written
# out as `name` in JSON lines.
_CONTEXT_FIELDS = ("namespace", "app", "reason", "key")


def app_context(metadata: dict[str, Any]) -> dict[str, str]:
    """The `extra` of a log call about one FastAPIApp."""
    return {"namespace": metadata["namespace"], "app": metadata["name"]}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _CONTEXT_FIELDS:
            if hasattr(record, field):
                line["name" if field == "app" else field] = getattr(record, field)
        # kopf attaches the object it is handling as `k8s_ref`.
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            line.setdefault("namespace", ref.get("namespace"))
            line.setdefault("name", ref.get("name"))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{f}={getattr(record, f)}" for f in _CONTEXT_FIELDS if hasattr(record, f))
        return f"{text} {context}" if context else text


def configure_logging(log_format: str, verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # kopf narrates every watch event at INFO; its warnings and errors are what matter here.
    logging.getLogger("kopf").setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
