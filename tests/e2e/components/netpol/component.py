"""A NetworkPolicy enforcer (enforcer.py, Python and iptables) on the node's network: the node's
CNI (ptp) enforces none, and no enforcer (kube-router, Calico, kube-network-policies) is served by
the package registries here."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.e2e.build import Engine, cache_key
from tests.e2e.components import Component, Context


def images(engine: Engine, context: Context, folder: Path) -> dict[str, str]:
    tag = f"fastapi-operator-e2e/netpol:{cache_key(folder / 'enforcer.py', context.tools_image)}"
    if not engine.has_image(tag):
        with tempfile.TemporaryDirectory() as tmp:
            build_context = Path(tmp)
            shutil.copy(folder / "enforcer.py", build_context / "enforcer.py")
            (build_context / "Dockerfile").write_text(f"FROM {context.tools_image}\nCOPY enforcer.py /enforcer.py\n")
            engine.build(build_context, tag)
    return {"NETPOL_IMAGE": tag}


COMPONENT = Component(
    folder=Path(__file__).resolve().parent,
    name="netpol", version="local", namespace="network-policy", ready=("daemonset/enforcer",), images=images,
)
