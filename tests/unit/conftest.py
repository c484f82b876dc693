from __future__ import annotations

from typing import Any, Callable

import pytest

from fastapi_operator.api import FastAPIApp
from fastapi_operator.render import Rendered, render_app
from fastapi_operator.render.ingress_class import CONVENTIONAL_CLASSES
from fastapi_operator.settings import Settings
from tests.manifests import app_manifest, full_manifest


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, acme_email=None, ingress_class="nginx")


def by_kind(rendered: Rendered, kind: str) -> list[dict[str, Any]]:
    return [m for m in rendered.manifests if m["kind"] == kind]


def one(rendered: Rendered, kind: str) -> dict[str, Any]:
    (manifest,) = by_kind(rendered, kind)
    return manifest


@pytest.fixture
def render(settings: Settings) -> Callable[..., Rendered]:
    """render(**spec) renders app_manifest(**spec); render(full=True) renders the full example."""

    def _render(full: bool = False, uid: str | None = "uid-1", settings_: Settings | None = None,
                classes: dict[str, Any] | None = None, **spec: Any) -> Rendered:
        manifest = full_manifest() if full else app_manifest(**spec)
        if full:
            manifest["spec"].update(spec)
        manifest["metadata"]["uid"] = uid
        return render_app(FastAPIApp.model_validate(manifest), settings_ or settings, classes or CONVENTIONAL_CLASSES)

    return _render
