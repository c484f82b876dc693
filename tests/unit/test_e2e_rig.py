"""The e2e rig's decisions, without a cluster: what a cache key covers, when a build reruns,
where pins come from, and what the test NetworkPolicy enforcer admits."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.e2e import components, rig

ENFORCER = Path(rig.HERE) / "components" / "netpol" / "enforcer.py"


def load_enforcer():
    spec = importlib.util.spec_from_file_location("enforcer", ENFORCER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rigs_pins_come_from_one_file_and_kubernetes_from_the_control_planes_go_mod():
    pins = rig.read_pins()
    assert pins["KIND_VERSION"].startswith("v0.31.")
    assert {"MOBY_VERSION", "RUNC_VERSION", "CONTAINERD_VERSION", "COREDNS_VERSION"} <= set(pins)
    assert rig.kubernetes_version().startswith("v1.35.")


def test_each_component_is_one_folder_with_its_pin_manifest_and_ready_check():
    every = components.load()
    assert {c.name for c in every} == {"traefik", "pebble", "cert-manager", "netpol", "prometheus", "redis", "argocd"}
    for component in every:
        assert component.folder.parent == Path(components.__file__).parent
        assert component.ready and component.namespace in component.manifest
        variables = set(re.findall(r"\$\{(\w+)\}", component.manifest))
        assert set(component.binaries) <= variables, f"{component.name}: an image its manifest never names"
    # The pins that used to live in versions.env are each in their component, once.
    assert not {"TRAEFIK_VERSION", "PEBBLE_VERSION", "CERT_MANAGER_E2E_VERSION"} & set(rig.read_pins())


def test_cert_managers_pin_is_the_version_its_go_mod_builds():
    (cert_manager,) = [c for c in components.load() if c.name == "cert-manager"]
    assert f"github.com/cert-manager/cert-manager {cert_manager.version}" in (cert_manager.folder / "go.mod").read_text()


def test_a_components_build_is_keyed_by_its_pin_and_inputs_not_by_its_manifest(tmp_path, monkeypatch):
    calls = []
    component = components.Component(name="thing", folder=tmp_path, version="v1", namespace="thing",
                                      ready=("deployment/thing",), build=lambda out, version: calls.append(version),
                                      build_inputs=("go.mod",))
    (tmp_path / "go.mod").write_text("module thing")
    (tmp_path / "manifest.yaml").write_text("a")
    monkeypatch.setattr(components, "build_once", lambda name, key, build: (build(tmp_path), key)[1])
    first = component.built()
    (tmp_path / "manifest.yaml").write_text("b")
    assert component.built() == first
    (tmp_path / "go.mod").write_text("module thing // v2")
    assert component.built() != first


def test_a_cache_key_changes_with_any_input(tmp_path):
    source = tmp_path / "input"
    source.write_text("a")
    first = rig.cache_key("v1", source)
    assert rig.cache_key("v1", source) == first
    assert rig.cache_key("v2", source) != first
    source.write_text("b")
    assert rig.cache_key("v1", source) != first


def test_a_build_runs_once_per_key_and_a_failed_one_leaves_nothing(tmp_path):
    calls = []

    def build(out):
        calls.append(out)
        (out / "artefact").write_text("x")

    first = rig.build_once("thing", "k1", build, root=tmp_path)
    assert rig.build_once("thing", "k1", build, root=tmp_path) == first
    assert len(calls) == 1 and (first / "artefact").exists()

    def failing(out):
        raise RuntimeError("compiler died")

    with pytest.raises(RuntimeError):
        rig.build_once("thing", "k2", failing, root=tmp_path)
    assert not (tmp_path / "thing-k2").exists()


def pod(namespace, name, ip, **labels):
    return {"metadata": {"namespace": namespace, "name": name, "labels": labels}, "spec": {}, "status": {"podIP": ip}}


POLICY = {"metadata": {"namespace": "shop", "name": "hello"}, "spec": {
    "podSelector": {"matchLabels": {"app": "hello"}}, "policyTypes": ["Ingress"],
    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}}],
                 "ports": [{"port": 8000, "protocol": "TCP"}]}]}}
NAMESPACES = {name: {"kubernetes.io/metadata.name": name} for name in ("shop", "traefik", "intruder")}


def test_the_enforcer_admits_only_the_ingress_namespace_on_the_apps_port():
    enforcer = load_enforcer()
    pods = [pod("shop", "hello-1", "10.244.0.10", app="hello"), pod("traefik", "traefik", "10.244.0.2"),
            pod("intruder", "curl", "10.244.0.66"), pod("shop", "other", "10.244.0.11", app="other")]
    lines = enforcer.rules([POLICY], pods, NAMESPACES)
    assert f"-A {enforcer.CHAIN} -s 10.244.0.2/32 -d 10.244.0.10/32 -p tcp --dport 8000 -j RETURN" in lines
    assert lines[-1] == f"-A {enforcer.CHAIN} -d 10.244.0.10/32 -j DROP"
    assert not any("10.244.0.66" in line or "10.244.0.11" in line for line in lines)


def test_the_enforcer_resolves_a_named_port_per_pod_as_a_port_change_rolls():
    enforcer = load_enforcer()
    named = {**POLICY, "spec": {**POLICY["spec"], "ingress": [{**POLICY["spec"]["ingress"][0],
                                                                "ports": [{"port": "http", "protocol": "TCP"}]}]}}

    def serving(name, ip, port):
        serving_pod = pod("shop", name, ip, app="hello")
        serving_pod["spec"] = {"containers": [{"ports": [{"name": "http", "containerPort": port}]}]}
        return serving_pod

    pods = [serving("old", "10.244.0.10", 8000), serving("new", "10.244.0.12", 8080), pod("traefik", "t", "10.244.0.2")]
    lines = enforcer.rules([named], pods, NAMESPACES)
    assert f"-A {enforcer.CHAIN} -s 10.244.0.2/32 -d 10.244.0.10/32 -p tcp --dport 8000 -j RETURN" in lines
    assert f"-A {enforcer.CHAIN} -s 10.244.0.2/32 -d 10.244.0.12/32 -p tcp --dport 8080 -j RETURN" in lines
    assert not any("--dport 8080" in line and "10.244.0.10/32" in line for line in lines)


def test_the_enforcer_refuses_selectors_it_does_not_implement():
    enforcer = load_enforcer()
    policy = {**POLICY, "spec": {**POLICY["spec"], "podSelector": {"matchExpressions": [{"key": "a"}]}}}
    with pytest.raises(ValueError):
        enforcer.rules([policy], [pod("shop", "hello-1", "10.244.0.10", app="hello")], NAMESPACES)


def test_a_frozen_cgroup_left_by_a_killed_node_is_thawed(tmp_path):
    frozen = tmp_path / "docker" / "node" / "pod" / "freezer.state"
    frozen.parent.mkdir(parents=True)
    frozen.write_text("FROZEN\n")
    thawed = tmp_path / "docker" / "node" / "freezer.state"
    thawed.write_text("THAWED\n")
    assert rig.thaw_frozen_cgroups(tmp_path / "docker") == [frozen.parent]
    assert frozen.read_text() == "THAWED"
    assert rig.thaw_frozen_cgroups(tmp_path / "missing") == []
