"""Which apps a Gateway or HostClaim change concerns, and the tallies /metrics reports about apps."""

from __future__ import annotations

from fastapi_operator.handlers import AppsByHost, GatewayChanges, routes_through
from fastapi_operator.metrics import app_tallies


def gateway(listeners, status=None, annotations=None):
    return {"metadata": {"namespace": "infra", "name": "public", "annotations": annotations or {}},
            "spec": {"listeners": listeners}, "status": status or {}}


HTTP = {"name": "http", "protocol": "HTTP", "port": 80}


def test_a_gateways_status_is_not_a_change_its_listeners_and_annotations_are():
    changes = GatewayChanges()
    changes.seed([gateway([HTTP])])
    assert changes.changed("MODIFIED", gateway([HTTP], status={"listeners": [{"attachedRoutes": 3}]})) is None
    assert changes.changed("MODIFIED", gateway([HTTP, {**HTTP, "name": "alt", "port": 8080}])) == ("infra", "public")
    assert changes.changed("MODIFIED", gateway([HTTP, {**HTTP, "name": "alt", "port": 8080}])) is None
    annotated = gateway([HTTP, {**HTTP, "name": "alt", "port": 8080}],
                        annotations={"fastapi-operator.dev/controller-namespace": "proxies"})
    assert changes.changed("MODIFIED", annotated) == ("infra", "public")
    assert changes.changed("DELETED", annotated) == ("infra", "public")
    assert changes.changed("ADDED", gateway([HTTP])) == ("infra", "public")


def app(namespace="shop", **ingress):
    return {"metadata": {"namespace": namespace, "name": "a"}, "spec": {"ingress": ingress} if ingress else {}}


def served(namespace, name, *hosts):
    return {"metadata": {"namespace": namespace, "name": name},
            "spec": {"ingress": {"hosts": list(hosts)}} if hosts else {}}


def test_a_host_claims_change_concerns_the_apps_serving_the_host_as_they_are_now():
    index = AppsByHost()
    index.seed([served("shop", "web", "a.example.com", "b.example.com"), served("blog", "web", "a.example.com"),
                served("blog", "plain")])
    assert index.serving("a.example.com") == [("blog", "web"), ("shop", "web")]
    index.update("MODIFIED", served("shop", "web", "b.example.com", "c.example.com"))
    assert index.serving("a.example.com") == [("blog", "web")]
    assert index.serving("c.example.com") == [("shop", "web")]
    index.update("ADDED", served("blog", "plain", "c.example.com"))
    assert index.serving("c.example.com") == [("blog", "plain"), ("shop", "web")]
    index.update("MODIFIED", served("blog", "plain"))  # its ingress removed
    index.update("DELETED", served("shop", "web", "b.example.com", "c.example.com"))
    assert index.serving("b.example.com") == index.serving("c.example.com") == []
    assert index.apps == {"a.example.com": {("blog", "web")}}, "no host is held for apps that are gone"
    # A stored spec the model refuses still names its hosts (reconcile.shared.stored_hosts).
    index.update("MODIFIED", {"metadata": {"namespace": "blog", "name": "web"},
                              "spec": {"ingress": {"hosts": ["a.example.com", 7]}, "replicas": "many"}})
    assert index.serving("a.example.com") == [("blog", "web")]


def test_only_apps_routed_through_the_gateway_are_concerned():
    key = ("infra", "public")
    assert routes_through(app(hosts=["a"], gateway={"name": "public", "namespace": "infra"}), key, None)
    assert not routes_through(app(hosts=["a"], gateway={"name": "public"}), key, None)  # its own namespace's
    assert routes_through(app("infra", hosts=["a"], gateway={"name": "public"}), key, None)
    assert not routes_through(app(hosts=["a"], className="nginx"), key, "infra/public")
    assert routes_through(app(hosts=["a"]), key, "infra/public")  # the operator's default Gateway
    assert not routes_through(app(hosts=["a"]), key, None)
    assert not routes_through(app(), key, "infra/public")  # no ingress at all


def condition(type_, status, reason):
    return {"type": type_, "status": status, "reason": reason}


def test_apps_are_tallied_by_readiness_and_migrations_by_state():
    apps = [{"status": {"conditions": [condition("Ready", "True", "Ready"), condition("Reconciled", "True", "Reconciled")]}},
            {"status": {"conditions": [condition("Ready", "False", "NotReconciled"),
                                       condition("Reconciled", "False", "MigrationRunning")]}},
            {"status": {"conditions": [condition("Ready", "False", "NotReconciled"),
                                       condition("Reconciled", "False", "MigrationFailed")]}},
            {}]
    readiness, migrations = app_tallies(apps)
    assert readiness == {("True", "Ready"): 1, ("False", "NotReconciled"): 2, ("Unknown", ""): 1}
    assert migrations == {"running": 1, "queued": 0, "failed": 1}
