"""Argo CD v3.6.1, built from its Go module (this folder's go.mod, Go 1.27 for this build alone),
installed from the module's own manifests/core-install.yaml with its images swapped for ones built
here, the project's health check merged into argocd-cm, and a git server (git daemon) in the
cluster that the tests push to. Core install: no API server, UI or Dex; the `argocd` CLI the build
makes is the same binary, and tests/e2e/test_argocd.py runs its `admin settings resource-overrides
health` against deploy/argocd/argocd-cm.yaml."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

from tests.e2e.build import PATH_ENV, Engine, build_once, cache_key, debian_rootfs, go_install, read_pins, run
from tests.e2e.components import Component, Context

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
MODULE = "github.com/argoproj/argo-cd/v3"
# Argo CD's go.mod says go 1.27.0; the machine's Go is older. Only this build uses the newer one.
TOOLCHAIN = "go1.27.3"
# The one binary dispatches on its name.
COMMANDS = ("argocd-application-controller", "argocd-repo-server", "argocd-server", "argocd-cmp-server")
PACKAGES = ["git", "ca-certificates", "passwd"]
# Resync often, so the tests see three reconciliation periods in a minute (default 120 s).
RECONCILIATION = "15s"


def build(out: Path, version: str) -> None:
    env = {"GOTOOLCHAIN": TOOLCHAIN, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    run("go", "build", "-trimpath", "-ldflags", f"-s -w -X {MODULE}/common.version={version.lstrip('v')}",
        "-o", out / "argocd", f"{MODULE}/cmd", env=env, cwd=HERE)
    listed = run("go", "list", "-m", "-f", "{{.Dir}}", MODULE, env=env, cwd=HERE).strip()
    module = Path(listed)
    shutil.copytree(module / "manifests" / "crds", out / "crds", ignore=shutil.ignore_patterns("kustomization.yaml"))
    shutil.copy(module / "manifests" / "core-install.yaml", out / "core-install.yaml")
    for script in ("git-verify-wrapper.sh", "gpg-wrapper.sh", "tool-versions.sh"):
        shutil.copy(module / "hack" / script, out / script)


def helm(built: Path) -> Path:
    """The helm binary the repo-server runs for a chart, at the version this Argo CD release ships
    (its hack/tool-versions.sh), built from Helm's module with the machine's Go; cached on its own,
    so the Argo CD build is not redone for it."""
    pins = dict(line.split("=", 1) for line in (built / "tool-versions.sh").read_text().splitlines()
                if "=" in line and not line.startswith("#"))
    version = "v" + pins["HELM_VERSION"].strip()
    module = f"helm.sh/helm/{version.split('.')[0]}"

    def build_helm(out: Path) -> None:
        go_install(out, [f"{module}/cmd/helm@{version}"], ldflags=f"-s -w -X {module}/internal/version.version={version}")
    return build_once("helm", cache_key(module, version, build_helm), build_helm) / "helm"


def images(engine: Engine, context: Context, folder: Path) -> dict[str, str]:
    """Argo CD's image: Debian with git, the binary under each of its names, the wrappers the
    repo-server runs for every manifest generation, and helm for charts; Redis from Debian's package."""
    built = COMPONENT.built()
    assert built is not None
    helm_binary = helm(built)
    pins = read_pins()
    rootfs = debian_rootfs(pins, "argocd", PACKAGES)
    tag = f"fastapi-operator-e2e/argocd:{COMPONENT.version}-{cache_key(rootfs.parent.name, built.name, helm_binary.parent.name)}"
    if not engine.has_image(tag):
        engine.import_tar(rootfs, tag + "-rootfs", [PATH_ENV, "ENV LANG=C.UTF-8"])
        with tempfile.TemporaryDirectory() as tmp:
            context_dir = Path(tmp)
            for name in ("argocd", "git-verify-wrapper.sh", "gpg-wrapper.sh"):
                shutil.copy(built / name, context_dir / name)
            shutil.copy(helm_binary, context_dir / "helm")
            links = " && ".join(f"ln -s /usr/local/bin/argocd /usr/local/bin/{name}" for name in COMMANDS)
            (context_dir / "Dockerfile").write_text(
                f"FROM {tag}-rootfs\n"
                "RUN groupadd -g 999 argocd && useradd -u 999 -g 999 -m -d /home/argocd argocd \\\n"
                " && mkdir -p /app/config/ssh /app/config/tls /app/config/gpg/source /app/config/gpg/keys \\\n"
                " && chown -R 999:999 /app/config\n"
                "COPY argocd git-verify-wrapper.sh gpg-wrapper.sh helm /usr/local/bin/\n"
                f"RUN chmod 755 /usr/local/bin/* && {links}\n"
                "USER 999\n")
            engine.build(context_dir, tag)
    redis = debian_rootfs(pins, "redis", ["redis-server", "ca-certificates"])
    redis_tag = f"fastapi-operator-e2e/redis:{cache_key(redis.parent.name)}"
    if not engine.has_image(redis_tag):
        engine.import_tar(redis, redis_tag, [PATH_ENV, "USER 65532"])
    return {"ARGOCD_IMAGE": tag, "ARGOCD_REDIS_IMAGE": redis_tag}


def health_check_data() -> dict[str, str]:
    return yaml.safe_load((REPO / "deploy" / "argocd" / "argocd-cm.yaml").read_text())["data"]


def core_install(built: Path) -> str:
    """The module's core-install.yaml for this cluster: namespaced into argocd, images swapped (and
    never pulled), GnuPG off, Redis started by its command (Debian's has no entrypoint), the project's health
    check in argocd-cm, per-resource health kept in the Application's status, and no
    ApplicationSet controller (nothing here uses it). `$` is escaped for the rig's template."""
    documents = []
    for document in yaml.safe_load_all((built / "core-install.yaml").read_text()):
        if not document or (document["kind"] == "Deployment"
                            and document["metadata"]["name"] == "argocd-applicationset-controller"):
            continue
        metadata = document["metadata"]
        if document["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            metadata["namespace"] = "argocd"
        if document["kind"] in ("Deployment", "StatefulSet"):
            pod = document["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                if "redis" in container["image"]:
                    container["image"], container["command"] = "ARGOCD_REDIS_IMAGE", ["redis-server"]
                else:
                    container["image"] = "ARGOCD_IMAGE"
                    # No gpg in the image: commit signatures are not verified here.
                    container.setdefault("env", []).append({"name": "ARGOCD_GPG_ENABLED", "value": "false"})
                container["imagePullPolicy"] = "Never"
        if document["kind"] == "ConfigMap" and metadata["name"] == "argocd-cm":
            document["data"] = {**(document.get("data") or {}), **health_check_data(),
                                "timeout.reconciliation": RECONCILIATION}
        if document["kind"] == "ConfigMap" and metadata["name"] == "argocd-cmd-params-cm":
            document["data"] = {**(document.get("data") or {}), "controller.resource.health.persist": "true",
                                "reposerver.parallelism.limit": "2"}
        documents.append(document)
    text = yaml.safe_dump_all(documents, sort_keys=False).replace("$", "$$")
    return text.replace("ARGOCD_REDIS_IMAGE", "${ARGOCD_REDIS_IMAGE}").replace(
        "image: ARGOCD_IMAGE", "image: ${ARGOCD_IMAGE}")


COMPONENT = Component(
    folder=HERE,
    name="argocd", version="v3.6.1", namespace="argocd",
    ready=("statefulset/argocd-application-controller", "deployment/argocd-repo-server", "deployment/argocd-redis",
           "deployment/git"),
    build=build, build_inputs=("go.mod", "go.sum"), crds=("crds",), images=images, from_build=core_install,
)
