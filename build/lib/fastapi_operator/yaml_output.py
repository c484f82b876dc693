"""YAML as people read it: keys in the order written, every object in full (no anchors)."""

from __future__ import annotations

from typing import Any, Iterable

import yaml


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False, width=100)


def dump_all(documents: Iterable[Any]) -> str:
    return yaml.dump_all(documents, Dumper=_NoAliasDumper, sort_keys=False, width=100)
