"""Redis, from Debian's package: the queue the example app's arq worker consumes (issue 25's
workers on real pods). Nothing else in the tier uses it."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.build import PATH_ENV, Engine, cache_key, debian_rootfs, read_pins
from tests.e2e.components import Component, Context

PACKAGES = ["redis-server", "ca-certificates"]  # the rootfs builder adds the machine's CA bundle


def images(engine: Engine, context: Context, folder: Path) -> dict[str, str]:
    rootfs = debian_rootfs(read_pins(), "redis", PACKAGES)
    tag = f"fastapi-operator-e2e/redis:{cache_key(rootfs.parent.name)}"
    if not engine.has_image(tag):
        engine.import_tar(rootfs, tag, [PATH_ENV, "USER 65532"])
    return {"REDIS_IMAGE": tag}


COMPONENT = Component(
    folder=Path(__file__).resolve().parent,
    name="redis", version="debian", namespace="redis", ready=("deployment/redis",), images=images,
)
