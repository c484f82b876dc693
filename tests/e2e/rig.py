"""The offline kind cluster: the engine and the node, built from pinned sources, and the cluster
brought up with every component (tests/e2e/components/) and the operator from its chart.

Nothing is pulled from an image registry or a release page. Binaries come from the Go module
proxy, root filesystems from Debian's archive through debootstrap (build.py), each component from
its own folder, and the operator's and the example app's images from their own Dockerfiles.
Builds are cached under ~/.cache/fastapi-operator/e2e, so a second run rebuilds nothing.

    python -m tests.e2e.rig up      # build what is missing, start the engine and the cluster
    python -m tests.e2e.rig down    # delete the cluster and stop the engine
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from tests.e2e import components
from tests.e2e.build import (
    CACHE,
    CONTROLPLANE,
    HERE,
    KUBE_VERSION_MODULE,
    NODE_PACKAGES,
    PATH_ENV,
    REPO,
    RUN_DIR,
    Engine,
    binary_image,
    build_once,
    cache_key,
    controlplane_crd,
    debian_rootfs,
    gateway_api_crds,
    go_install,
    kubernetes_version,
    log,
    module_dir,
    read_pins,
    run,
    slim_image,
    tools_image,
    wait_for_exit,
)
from tests.e2e.components.pebble.component import DIRECTORY as PEBBLE_DIRECTORY
from tests.e2e.components.traefik.component import CLUSTER_IP as TRAEFIK_CLUSTER_IP
from tests.harness import Cluster

CLUSTER_NAME = "fastapi-operator-e2e"
# Ports on 127.0.0.1 that reach the node's 80 and 443, where Traefik listens.
HTTP_PORT, HTTPS_PORT = 18080, 18443
TEST_DOMAIN = "e2e.test"
OPERATOR_NAMESPACE = "fastapi-operator-system"
OPERATOR_IMAGE = "fastapi-operator:e2e"
HELLO_IMAGE = "fastapi-operator-hello:e2e"
HELLO_IMAGE_NEXT = "fastapi-operator-hello:e2e-next"
__all__ = ["CACHE", "HERE", "PEBBLE_DIRECTORY", "REPO", "TRAEFIK_CLUSTER_IP", "cache_key", "build_once", "read_pins",
           "kubernetes_version"]


# --- The engine's and the node's binaries ---

def engine_binaries(pins: dict[str, str]) -> Path:
    """The Docker daemon, containerd and runc. Debian's Docker 20.10 asks for every capability
    when it starts a privileged container and fails, because these machines lack
    CAP_SYS_RESOURCE; newer moby grants only the bounding set. runc needs cgo for seccomp."""
    def build(out: Path) -> None:
        moby = pins["MOBY_VERSION"]
        go_install(out, [f"github.com/moby/moby/v2/cmd/dockerd@{moby}", f"github.com/moby/moby/v2/cmd/docker-proxy@{moby}"])
        go_install(out, [f"github.com/opencontainers/runc@{pins['RUNC_VERSION']}"], cgo=True, tags="seccomp")
        containerd = pins["CONTAINERD_VERSION"]
        go_install(out, [f"github.com/containerd/containerd/v2/cmd/{c}@{containerd}"
                         for c in ("containerd", "ctr", "containerd-shim-runc-v2")])
    key = cache_key(pins["MOBY_VERSION"], pins["RUNC_VERSION"], pins["CONTAINERD_VERSION"], build)
    return build_once("engine", key, build)


def node_binaries(pins: dict[str, str]) -> Path:
    """kind, the CNI plugins and Kubernetes' own binaries (static, stamped with the release, as
    kubeadm checks the version it runs), etcd, CoreDNS and pause."""
    version = kubernetes_version()

    def build(out: Path) -> None:
        go_install(out, [f"sigs.k8s.io/kind@{pins['KIND_VERSION']}"])
        cni = out / "cni"
        cni.mkdir()
        go_install(cni, [f"github.com/containernetworking/plugins/plugins/{p}@{pins['CNI_PLUGINS_VERSION']}"
                         for p in ("ipam/host-local", "main/loopback", "main/ptp", "meta/portmap")])
        minor = version.split(".")[1]
        stamp = " ".join(f"-X {package}.{field}={value}" for package in
                         ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
                         for field, value in (("gitVersion", version), ("gitMajor", "1"), ("gitMinor", minor),
                                              ("gitTreeState", "clean")))
        go_install(out, [f"k8s.io/kubernetes/cmd/{c}" for c in (
            "kubelet", "kubeadm", "kubectl", "kube-proxy", "kube-apiserver", "kube-controller-manager",
            "kube-scheduler")], ldflags=stamp, cwd=CONTROLPLANE)
        run("go", "build", "-o", out / "etcd", "go.etcd.io/etcd/server/v3", env={"CGO_ENABLED": "0"},
            cwd=CONTROLPLANE)
        go_install(out, [f"github.com/coredns/coredns@{pins['COREDNS_VERSION']}"])
        pause = Path(run("go", "list", "-m", "-f", "{{.Dir}}", KUBE_VERSION_MODULE, cwd=CONTROLPLANE).strip())
        run("gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{pins['PAUSE_TAG']}", "-o", out / "pause",
            pause / "build" / "pause" / "linux" / "pause.c")
    key = cache_key(version, pins["KIND_VERSION"], pins["CNI_PLUGINS_VERSION"], pins["COREDNS_VERSION"],
                    pins["PAUSE_TAG"], CONTROLPLANE / "go.mod", CONTROLPLANE / "go.sum", build)
    return build_once("node-binaries", key, build)



def node_image(engine: Engine, pins: dict[str, str], component_images: dict[str, str]) -> str:
    """The kind node, with every image it runs but the project's own already in its containerd:
    those change with every commit and are loaded into each new cluster instead."""
    version = kubernetes_version()
    engine_bins, node_bins = engine_binaries(pins), node_binaries(pins)
    rootfs = debian_rootfs(pins, "node", NODE_PACKAGES)
    tools = tools_image(engine, pins)
    key = cache_key(engine_bins.name, node_bins.name, rootfs.parent.name, tools, pins["ETCD_TAG"], pins["PAUSE_TAG"],
                    HERE / "images", node_image, binary_image, *component_images.values())
    tag = f"fastapi-operator-e2e/node:{version}-{key}"
    if engine.has_image(tag):
        return tag
    log(f"assembling the node image {tag}")
    kind = module_dir(f"sigs.k8s.io/kind@{pins['KIND_VERSION']}")
    with tempfile.TemporaryDirectory() as tmp:
        base_context = Path(tmp) / "base"
        shutil.copytree(HERE / "images" / "node-base", base_context)
        shutil.copytree(kind / "images" / "base" / "files", base_context / "files",
                        ignore=shutil.ignore_patterns("LICENSES"))
        subprocess.run(["chmod", "-R", "u+w", base_context], check=True)
        (base_context / "bin").mkdir()
        for binary in ("containerd", "ctr", "containerd-shim-runc-v2", "runc"):
            shutil.copy(engine_bins / binary, base_context / "bin" / binary)
        shutil.copytree(node_bins / "cni", base_context / "cni")
        engine.import_tar(rootfs, f"fastapi-operator-e2e/rootfs-node:{key}", [PATH_ENV])
        engine.build(base_context, f"fastapi-operator-e2e/node-base:{key}", ROOTFS=f"fastapi-operator-e2e/rootfs-node:{key}")

        node_context = Path(tmp) / "node"
        shutil.copytree(HERE / "images" / "node", node_context)
        (node_context / "bin").mkdir()
        for binary in ("kubeadm", "kubelet", "kubectl"):
            shutil.copy(node_bins / binary, node_context / "bin" / binary)
        (node_context / "version").write_text(version + "\n")
        images = node_context / "images"
        images.mkdir()
        # The names kubeadm runs (cmd/kubeadm/app/constants) and the sandbox image of kind's
        # containerd config; kind and kubeadm never pull a tag that is present.
        registry = "registry.k8s.io"
        static = {
            f"{registry}/kube-apiserver:{version}": ({"/usr/local/bin/kube-apiserver": node_bins / "kube-apiserver"}, []),
            f"{registry}/kube-controller-manager:{version}": (
                {"/usr/local/bin/kube-controller-manager": node_bins / "kube-controller-manager"}, []),
            f"{registry}/kube-scheduler:{version}": ({"/usr/local/bin/kube-scheduler": node_bins / "kube-scheduler"}, []),
            f"{registry}/etcd:{pins['ETCD_TAG']}": ({"/usr/local/bin/etcd": node_bins / "etcd"}, []),
            f"{registry}/coredns/coredns:{pins['COREDNS_VERSION']}": (
                {"/coredns": node_bins / "coredns"}, ['ENTRYPOINT ["/coredns"]']),
            f"{registry}/pause:{pins['PAUSE_TAG']}": ({"/pause": node_bins / "pause"}, ['ENTRYPOINT ["/pause"]']),
        }
        for image, (files, changes) in static.items():
            binary_image(engine, image, files, changes)
        proxy_context = Path(tmp) / "kube-proxy"
        proxy_context.mkdir()
        shutil.copy(node_bins / "kube-proxy", proxy_context / "kube-proxy")
        (proxy_context / "Dockerfile").write_text(f"FROM {tools}\nCOPY kube-proxy /usr/local/bin/kube-proxy\n")
        proxy_image = f"{registry}/kube-proxy:{version}"
        engine.build(proxy_context, proxy_image)
        for index, image in enumerate([*static, proxy_image, *component_images.values()]):
            engine.docker("save", "-o", images / f"{index:02d}.tar", image)
        engine.build(node_context, tag, BASE=f"fastapi-operator-e2e/node-base:{key}")
    return tag



def component_images(engine: Engine, pins: dict[str, str], state: Path) -> dict[str, str]:
    """Every component's images, by the variable its manifest names them with (built when missing)."""
    context = components.Context(state=state, tools_image=tools_image(engine, pins))
    return {variable: tag for component in components.load() for variable, tag in
            component.image_tags(engine, context).items()}


def build_all(engine: Engine | None = None, state: Path = CACHE / "cluster") -> dict[str, object]:
    """Every binary and image the cluster needs; cached, so a warm call takes seconds."""
    pins = read_pins()
    timings: dict[str, object] = {}

    def timed(name: str, step: Callable[[], object]) -> object:
        started = time.monotonic()
        result = step()
        timings[name] = f"{time.monotonic() - started:.0f}s"
        return result

    timed("engine binaries", lambda: engine_binaries(pins))
    engine = engine or Engine(engine_binaries(pins))
    timed("engine start", engine.start)
    timed("node binaries", lambda: node_binaries(pins))
    for component in components.load():
        timed(f"{component.name} {component.version}", component.built)
    timed("python:3.11-slim", lambda: slim_image(engine, pins))
    images = timed("component images", lambda: component_images(engine, pins, state))
    timed("node image", lambda: node_image(engine, pins, images))
    return timings


def own_images(engine: Engine) -> dict[str, str]:
    """The operator's and the example app's images, from the project's own Dockerfiles (which
    the legacy builder caches by layer)."""
    engine.build(REPO, OPERATOR_IMAGE)
    engine.build(REPO / "examples" / "hello", HELLO_IMAGE)
    # A second tag of the same app, for rollouts.
    engine.docker("tag", HELLO_IMAGE, HELLO_IMAGE_NEXT)
    return {"OPERATOR_IMAGE": OPERATOR_IMAGE, "HELLO_IMAGE": HELLO_IMAGE, "HELLO_IMAGE_NEXT": HELLO_IMAGE_NEXT}





# --- The cluster ---

class KindCluster(Cluster):
    """The tests' one Cluster class (tests/harness.py: kubectl, apply, get), with what only kind
    has: the container engine its node runs in, the kind binary and the state directory."""

    def __init__(self, engine: Engine, kind: Path, kubectl: Path, state: Path) -> None:
        super().__init__(state / "kubeconfig", state / "kubeconfig", str(kubectl), state)
        self.engine, self.kind, self.state = engine, kind, state

    def kind_cmd(self, *args: str | Path, quiet: bool = True) -> str:
        return run(self.kind, *args, env=self.engine.env, quiet=quiet)

    def exists(self) -> bool:
        return CLUSTER_NAME in self.kind_cmd("get", "clusters").split()


def apply_template(cluster: Cluster, manifest: str, **values: str) -> None:
    """A component's manifest with its ${VARIABLES} filled in."""
    from string import Template

    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                    stdin=Template(manifest).substitute(values))


COREFILE_TEST_ZONE = """\
${domain}:53 {
    errors
    template IN A ${domain} {
        answer "{{ .Name }} 60 IN A ${address}"
    }
}
"""


def up(state: Path = CACHE / "cluster", reuse: bool = False) -> KindCluster:
    """Build what is missing, start the engine and a fresh cluster with every component. With
    `reuse` (FASTAPI_OPERATOR_E2E_REUSE=1), a cluster left up by `make kind-up` is used as it is."""
    pins = read_pins()
    state.mkdir(parents=True, exist_ok=True)
    wait_for_teardown()
    if reuse:
        engine = Engine(engine_binaries(pins))
        engine.start()
        node_bins = node_binaries(pins)
        cluster = KindCluster(engine, node_bins / "kind", node_bins / "kubectl", state)
        if cluster.exists() and (state / "timings.json").exists():
            log("reusing the running cluster")
            return cluster
    timings = build_all(state=state)
    engine = Engine(engine_binaries(pins))
    node_bins = node_binaries(pins)
    cluster = KindCluster(engine, node_bins / "kind", node_bins / "kubectl", state)
    images = component_images(engine, pins, state)
    node = node_image(engine, pins, images)

    def build_own_images() -> dict[str, str]:
        started = time.monotonic()
        built = own_images(engine)
        timings["operator and app images (while the cluster starts)"] = f"{time.monotonic() - started:.0f}s"
        return built

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as builder:
        own = builder.submit(build_own_images)
        if cluster.exists():
            delete_cluster(cluster)
        cluster.kind_cmd("create", "cluster", "--name", CLUSTER_NAME, "--image", node, "--config",
                         HERE / "kind-config.yaml", "--kubeconfig", cluster.kubeconfig, "--wait", "180s", quiet=False)
        timings["cluster create"] = f"{time.monotonic() - started:.0f}s"

        def load_own_images() -> None:
            built = own.result()
            loading = time.monotonic()
            cluster.kind_cmd("load", "docker-image", "--name", CLUSTER_NAME, *built.values())
            timings["operator and app images loaded (while the components start)"] = \
                f"{time.monotonic() - loading:.0f}s"

        # The components' images are in the node already: they start while the project's own load.
        loaded = builder.submit(load_own_images)
        started = time.monotonic()
        install_components(cluster, images, own_images_loaded=loaded.result)
        timings["components ready"] = f"{time.monotonic() - started:.0f}s"
    (state / "timings.json").write_text(json.dumps(timings, indent=1))
    log("timings: " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    log(f"cluster up: export KUBECONFIG={cluster.kubeconfig}")
    return cluster


COREFILE_TEST_ZONE = """\
${domain}:53 {
    errors
    template IN A ${domain} {
        answer "{{ .Name }} 60 IN A ${address}"
    }
}
"""


def resolve_test_hosts_to_traefik(cluster: Cluster) -> None:
    """Test hosts resolve to Traefik inside the cluster too, so Pebble's http01 checks take the
    path a browser does."""
    corefile = json.loads(cluster.kubectl("get", "configmap", "coredns", "-n", "kube-system", "-o", "json").stdout)
    zone = COREFILE_TEST_ZONE.replace("${domain}", TEST_DOMAIN).replace("${address}", TRAEFIK_CLUSTER_IP)
    if TEST_DOMAIN not in corefile["data"]["Corefile"]:
        corefile["data"]["Corefile"] = zone + corefile["data"]["Corefile"]
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"},
             "data": corefile["data"]}))
        cluster.kubectl("rollout", "restart", "-n", "kube-system", "deployment/coredns")


def install_components(cluster: KindCluster, images: dict[str, str], own_images_loaded: Callable[[], object]) -> None:
    """Every component at once (CRDs first: Traefik and cert-manager watch the Gateway API from
    their first moment), then the operator from its chart, then each component's ready check."""
    resolve_test_hosts_to_traefik(cluster)
    every = components.load()
    context = components.Context(state=cluster.state, tools_image="")
    values = {name: value for component in every for name, value in component.values(context).items()}
    # The PodMonitor of spec.metrics: no Prometheus Operator runs here (its module is not served),
    # but its API does, so apps that ask for metrics reconcile as they would on a platform's cluster.
    pod_monitor = controlplane_crd("monitoring.coreos.com_podmonitors.yaml")
    for crds in [path for component in every for path in component.crd_paths()] + gateway_api_crds() + [pod_monitor]:
        cluster.kubectl("apply", "--server-side", "-f", str(crds))
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    for component in every:
        apply_template(cluster, component.whole_manifest(), **images, **values)
    own_images_loaded()
    (prometheus,) = [component for component in every if component.name == "prometheus"]
    install_operator(cluster, values["PEBBLE_CA_BUNDLE"], monitoring_namespace=prometheus.namespace)
    for namespace, ready in [("kube-system", "deployment/coredns"), *((component.namespace, name)
                             for component in every for name in component.ready),
                             (OPERATOR_NAMESPACE, "deployment/fastapi-operator")]:
        cluster.kubectl("rollout", "status", "-n", namespace, ready, "--timeout=300s", timeout=330)


def install_operator(cluster: KindCluster, ca_bundle: str, monitoring_namespace: str) -> None:
    """From the chart, as a user installs it, with the images built here. Pebble is the
    operator's default ACME server, so an app that only gives an email gets its certificate."""
    import helm_python as helm

    repository, tag = OPERATOR_IMAGE.split(":")
    values = {"crds": {"install": False}, "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
              # No class and no namespace: apps get the default IngressClass (Traefik's), and the
              # NetworkPolicy admits the namespace that class's annotation names.
              "operator": {"acmeEmail": "ops@example.com", "acmeServer": PEBBLE_DIRECTORY, "acmeCaBundle": ca_bundle,
                           # The kind tier's Prometheus: apps with spec.metrics admit it to their metrics port.
                           "monitoringNamespace": monitoring_namespace}}
    with helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=OPERATOR_NAMESPACE) as config:
        config.install(REPO / "charts" / "fastapi-operator", "fastapi-operator", values,
                       namespace=OPERATOR_NAMESPACE, create_namespace=True, timeout=120)


TEARDOWN_PID = RUN_DIR / "teardown.pid"


def down_in_background() -> None:
    """down() in a process of its own, so the end of a test run does not wait for it (about
    20 s); the next up() does."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "teardown.log", "ab") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "tests.e2e.rig", "down"], cwd=REPO, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    TEARDOWN_PID.write_text(str(process.pid))


def wait_for_teardown() -> None:
    if TEARDOWN_PID.exists():
        log("waiting for the last run's cluster to be deleted")
        wait_for_exit(int(TEARDOWN_PID.read_text()), 180)
        TEARDOWN_PID.unlink(missing_ok=True)


FREEZER = Path("/sys/fs/cgroup/freezer/docker")


def thaw_frozen_cgroups(root: Path = FREEZER) -> list[Path]:
    """A pod container the node's runc was killing when the node itself was killed can stay in a
    frozen cgroup (cgroup v1 freezer: runc freezes, signals, thaws), and then neither it nor the
    node container ever exits: `kind delete` fails and the next run cannot start (seen once on
    this machine: a `runc init` in __refrigerator). Thawing lets them go."""
    thawed = []
    for state in root.rglob("freezer.state") if root.is_dir() else []:
        try:
            if state.read_text().strip() != "THAWED":
                state.write_text("THAWED")
                thawed.append(state.parent)
        except OSError:
            continue
    return thawed


def delete_cluster(cluster: KindCluster) -> None:
    try:
        cluster.kind_cmd("delete", "cluster", "--name", CLUSTER_NAME)
    except RuntimeError:
        thawed = thaw_frozen_cgroups()
        if not thawed:
            raise
        log(f"thawed {len(thawed)} frozen cgroups of the last cluster; deleting it again")
        time.sleep(2)
        cluster.kind_cmd("delete", "cluster", "--name", CLUSTER_NAME)


def down() -> None:
    pins = read_pins()
    engine = Engine(engine_binaries(pins))
    if engine.answering():
        cluster = KindCluster(engine, node_binaries(pins) / "kind", node_binaries(pins) / "kubectl", CACHE / "cluster")
        if cluster.exists():
            delete_cluster(cluster)
        engine.stop()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "up"
    if command == "up":
        up()
    elif command == "down":
        down()
    elif command == "build":
        timings = build_all()
        own_images(Engine(engine_binaries(read_pins())))
        print(json.dumps(timings, indent=1))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
