"""Operator settings: FASTAPI_OPERATOR_* variables, overridden by the matching flags."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fastapi_operator.cli import _settings, main
from fastapi_operator.settings import Settings


def test_every_setting_has_a_default():
    settings = Settings()
    # No class and no namespace: the cluster's default IngressClass, and its controller-namespace annotation.
    assert settings.namespaces == [] and settings.ingress_class is None
    assert settings.ingress_namespace is None and settings.resync_seconds == 300


def test_environment_sets_comma_separated_namespaces(monkeypatch):
    monkeypatch.setenv("FASTAPI_OPERATOR_NAMESPACES", "shop, blog")
    monkeypatch.setenv("FASTAPI_OPERATOR_ACME_ENVIRONMENT", "staging")
    settings = Settings()
    assert settings.namespaces == ["shop", "blog"]
    assert settings.acme_environment == "staging"


def test_a_flag_wins_over_the_environment(monkeypatch):
    import argparse

    monkeypatch.setenv("FASTAPI_OPERATOR_INGRESS_CLASS", "nginx")
    args = argparse.Namespace(setting_ingress_class="traefik", setting_workers=None)
    assert _settings(args).ingress_class == "traefik"


def test_a_bad_setting_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("FASTAPI_OPERATOR_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()


def test_the_cli_reports_a_bad_flag_and_exits_2(capsys):
    assert main(["render", "-f", "-", "--acme-environment", "testing"]) == 2
    assert "acme_environment" in capsys.readouterr().err
