"""The body of a server-side apply: YAML that carries any string the spec can hold."""

from __future__ import annotations

import json

import yaml

from fastapi_operator.kube import apply_body


def test_every_character_reaches_the_yaml_decoder_as_something_it_accepts():
    value = "héllo 👋 \x7f\x85\x9f\u2028\ufffe tab\there \x01"
    body = apply_body({"env": [{"name": "GREETING", "value": value}]})
    assert b"\\ud83d" not in body, "a surrogate-pair escape, which the API server's YAML decoder refuses"
    assert "👋".encode() in body
    # PyYAML, like the API server's decoder, refuses DEL and C1 controls unless escaped, and folds NEL and LS.
    assert yaml.safe_load(body.decode())["env"][0]["value"] == value
    assert json.loads(body)["env"][0]["value"] == value
