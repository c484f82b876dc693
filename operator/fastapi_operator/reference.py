"""The API reference (docs/api.md), generated from the CRD as `crd.py` renders it from `api.py`.

One source for each fact: the descriptions, defaults and limits a user reads here are the ones
`kubectl explain` shows and the API server enforces. A unit test fails when the committed page
differs from this output (`make crd` writes both).
"""

from __future__ import annotations

import json
from typing import Any

from .crd import render_crd, render_host_claim_crd

_LIMITS = (("minimum", "≥ {}"), ("maximum", "≤ {}"), ("minLength", "at least {} characters"),
           ("maxLength", "at most {} characters"), ("minItems", "at least {} items"), ("maxItems", "at most {} items"))


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "integer or string"
    if node.get("type") == "array":
        return f"list of {_type(node.get('items') or {})}"
    if node.get("type") == "object" and "additionalProperties" in node:
        return f"map of {_type(node['additionalProperties'])}"
    return node.get("type", "object")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _constraints(node: dict[str, Any]) -> str:
    parts = ["not empty" if (key, node[key]) in (("minLength", 1), ("minItems", 1)) else template.format(node[key])
             for key, template in _LIMITS if key in node]
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{value}`" for value in node["enum"]))
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    return "; ".join(parts)


def _rows(node: dict[str, Any], path: str, required: bool) -> list[str]:
    default = f"`{json.dumps(node['default'])}`" if "default" in node else ("required" if required else "")
    rows = [f"| `{path}` | {_type(node)} | {_cell(default)} | {_cell(node.get('description', ''))} "
            f"| {_cell(_constraints(node))} |"]
    children = node.get("properties") or (node.get("items") or {}).get("properties") or {}
    needed = set(node.get("required") or (node.get("items") or {}).get("required") or [])
    prefix = f"{path}[]" if node.get("type") == "array" else path
    for name, child in children.items():
        rows += _rows(child, f"{prefix}.{name}", name in needed)
    return rows


def _rules(node: dict[str, Any], path: str) -> list[str]:
    where = f"`{path.lstrip('.')}`" if path else "the object"
    found = [f"- {where}: {rule['message']} (`{rule['rule']}`)" for rule in node.get("x-kubernetes-validations") or []]
    children = node.get("properties") or (node.get("items") or {}).get("properties") or {}
    prefix = f"{path}[]" if node.get("type") == "array" else path
    for name, child in children.items():
        found += _rules(child, f"{prefix}.{name}")
    return found


def _section(crd: dict[str, Any], parts: tuple[str, ...]) -> list[str]:
    names = crd["spec"]["names"]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    lines = [f"## {names['kind']} (`{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}`, "
             f"{crd['spec']['scope']}, short name {', '.join(names.get('shortNames', []))})", "",
             _cell(schema.get("description", "")), "",
             "| field | type | default | description | limits |", "|---|---|---|---|---|"]
    for part in parts:
        if part in schema["properties"]:
            lines += _rows(schema["properties"][part], part, part in (schema.get("required") or []))
    rules = _rules(schema, "")
    if rules:
        lines += ["", "Rules that span fields (CEL, checked by the API server at admission):", "", *rules]
    return lines + [""]


def reference_markdown() -> str:
    lines = ["# API reference", "",
             "Generated from `operator/fastapi_operator/api.py` by `make crd` (`fastapi-operator reference`): do not",
             "edit. `kubectl explain fastapiapp.spec` shows the same descriptions. Fields of Kubernetes' own",
             "types (`env`, `envFrom`, `resources`, `affinity`, `tolerations`) take what the core API takes.", ""]
    lines += _section(render_crd(), ("spec", "status"))
    lines += _section(render_host_claim_crd(), ("spec",))
    return "\n".join(lines)
