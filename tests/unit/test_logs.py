"""JSON log lines: one event a line, with the app's namespace and name."""

from __future__ import annotations

import json
import logging

from fastapi_operator.logs import JsonFormatter, app_context


def test_a_json_line_names_the_apps_namespace_and_name():
    record = logging.LogRecord("fastapi_operator.reconcile", logging.INFO, __file__, 1, "Created Service shop/hello",
                               None, None)
    for key, value in {**app_context({"namespace": "shop", "name": "hello"}), "reason": "Created"}.items():
        setattr(record, key, value)
    line = json.loads(JsonFormatter().format(record))
    assert line["namespace"] == "shop" and line["name"] == "hello"
    assert line["message"] == "Created Service shop/hello" and line["level"] == "info"
    assert line["logger"] == "fastapi_operator.reconcile"
