"""cert-manager's controller and http01 solver, built from this folder's go.mod: v1.11.5, the newest
release whose commands are inside its main Go module (later releases keep them in nested modules
the proxy does not serve). No webhook or cainjector: nothing here needs them.

Its CRDs are those of the cert-manager the project targets (tests/controlplane/versions.env), not
of v1.11's: with v1.11's, server-side apply refuses the ClusterIssuer the operator renders
(http01.ingress.ingressClassName is not in that schema). The v1 API is the same."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.e2e.build import go_install, module_dir, target_cert_manager_version
from tests.e2e.components import Component

HERE = Path(__file__).resolve().parent


def build(out: Path, version: str) -> None:
    # go.mod pins `version`; the unit tests check the two agree.
    go_install(out, ["github.com/cert-manager/cert-manager/cmd/controller",
                     "github.com/cert-manager/cert-manager/cmd/acmesolver"], cwd=HERE)
    (out / "controller").rename(out / "cert-manager-controller")
    (out / "acmesolver").rename(out / "cert-manager-acmesolver")
    module = module_dir(f"github.com/cert-manager/cert-manager@{target_cert_manager_version()}")
    crds = out / "cert-manager-crds"
    crds.mkdir()
    for crd in (module / "deploy" / "crds").glob("*.yaml"):
        shutil.copy(crd, crds / crd.name)


COMPONENT = Component(
    folder=HERE,
    name="cert-manager", version="v1.11.5", namespace="cert-manager", ready=("deployment/cert-manager",),
    build=build, build_inputs=("go.mod", "go.sum"), crds=("cert-manager-crds",),
    binaries={"CERT_MANAGER_CONTROLLER_IMAGE": "cert-manager-controller",
              "CERT_MANAGER_ACMESOLVER_IMAGE": "cert-manager-acmesolver"},
)
