"""g) h) and bad input: the operator never clobbers, is admitted under "restricted", and turns
what the schema cannot catch into a condition and an Event."""

from __future__ import annotations

import time

from fastapi_operator.kube import DEPLOYMENT, SERVICE
from tests.harness import condition, eventually
from tests.manifests import app_manifest


def events_for(cluster, namespace, name):
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                          f"involvedObject.kind=FastAPIApp,involvedObject.name={name}",
                          "-o", "jsonpath={range .items[*]}{.type} {.reason} {.message}{'\\n'}{end}").stdout
    return [line for line in out.splitlines() if line]


def test_a_deployment_the_app_does_not_own_is_left_untouched_with_a_conflict(cluster, namespace):
    cluster.kubectl("create", "deployment", "taken", "-n", namespace, "--image=someone-else:1")
    before = cluster.get(DEPLOYMENT, namespace, "taken")
    cluster.apply(app_manifest("taken", namespace))

    app = eventually(lambda: condition(cluster.app(namespace, "taken"), "Reconciled").get("reason") == "Conflict"
                     and cluster.app(namespace, "taken"), message="Conflict condition")
    reconciled = condition(app, "Reconciled")
    assert reconciled["status"] == "False"
    assert f"Deployment {namespace}/taken" in reconciled["message"]
    assert eventually(lambda: [e for e in events_for(cluster, namespace, "taken") if e.startswith("Warning Conflict")])
    time.sleep(2)
    after = cluster.get(DEPLOYMENT, namespace, "taken")
    # Its controller still writes its status; nobody else wrote anything else.
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"] and after["metadata"].get("labels") == before["metadata"].get("labels")
    assert "ownerReferences" not in after["metadata"]
    assert "fastapi-operator" not in {entry["manager"] for entry in after["metadata"]["managedFields"]}
    # Nothing half-made: the Service, which had no conflict, was not created either.
    assert cluster.get(SERVICE, namespace, "taken") is None


def test_a_taken_service_undoes_the_deployment_made_before_it_and_retries_make_nothing(cluster, namespace):
    # The cache holds only the operator's children, so the Deployment (made first) goes out
    # before the API server says the Service's name is taken.
    cluster.kubectl("create", "service", "clusterip", "later", "--tcp=80:80", "-n", namespace)
    before = cluster.get(SERVICE, namespace, "later")
    cluster.apply(app_manifest("later", namespace))

    app = eventually(lambda: condition(cluster.app(namespace, "later"), "Reconciled").get("reason") == "Conflict"
                     and cluster.app(namespace, "later"), message="Conflict condition")
    assert f"Service {namespace}/later" in condition(app, "Reconciled")["message"]
    listed = cluster.kube.request("GET", DEPLOYMENT.path(namespace))
    assert listed["items"] == [], "a half-made set stayed behind"
    # The first retries come after 1, 2 and 4 s; a Deployment made and undone between two looks
    # would still show on a watch of the namespace.
    seen = [event["type"] for event in cluster.kube.watch(DEPLOYMENT, namespace, None,
                                                          listed["metadata"]["resourceVersion"], 5, 15)
            if event["type"] != "BOOKMARK"]
    assert seen == [], f"a retry made the Deployment again: {seen}"
    assert not [e for e in events_for(cluster, namespace, "later") if e.startswith("Normal Created")]
    after = cluster.get(SERVICE, namespace, "later")
    assert after["spec"] == before["spec"] and "ownerReferences" not in after["metadata"]
    assert "fastapi-operator" not in {entry["manager"] for entry in after["metadata"]["managedFields"]}

    # Once the name is free, the retries make the whole set.
    cluster.kubectl("delete", "service", "later", "-n", namespace)
    eventually(lambda: condition(cluster.app(namespace, "later"), "Reconciled").get("status") == "True", timeout=90,
               message="reconciled once the Service is gone")
    assert cluster.get(DEPLOYMENT, namespace, "later") and cluster.get(SERVICE, namespace, "later")


def test_pods_are_admitted_under_pod_security_restricted(cluster, namespace):
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    steps = [{"name": "migrate", "command": ["python", "-m", "app.migrate"]}]
    cluster.apply(app_manifest("strict", namespace, replicas=2, port=80, preStart=steps))
    eventually(lambda: condition(cluster.app(namespace, "strict"), "Available").get("status") == "True",
               message="Available under restricted")
    warnings = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "reason=FailedCreate",
                               "-o", "name").stdout
    assert warnings.strip() == ""
    pods = cluster.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout.split()
    assert len(pods) == 2


def test_a_missing_cluster_issuer_is_an_invalid_spec_and_other_apps_carry_on(cluster, namespace):
    cluster.apply(
        app_manifest("broken", namespace, ingress={"hosts": ["broken.example.com"]},
                     tls={"clusterIssuer": "does-not-exist"}),
        app_manifest("healthy", namespace),
    )
    app = eventually(lambda: condition(cluster.app(namespace, "broken"), "Reconciled").get("reason") == "InvalidSpec"
                     and cluster.app(namespace, "broken"), message="InvalidSpec")
    message = condition(app, "Reconciled")["message"]
    assert "spec.tls.clusterIssuer" in message and "does-not-exist" in message
    assert eventually(lambda: [e for e in events_for(cluster, namespace, "broken") if e.startswith("Warning InvalidSpec")])
    assert cluster.get(DEPLOYMENT, namespace, "broken") is None, "a half-made app"
    eventually(lambda: condition(cluster.app(namespace, "healthy"), "Available").get("status") == "True")

    # Creating the issuer is enough: the retry picks it up without a spec change.
    cluster.apply({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "does-not-exist"},
                   "spec": {"selfSigned": {}}})
    try:
        eventually(lambda: condition(cluster.app(namespace, "broken"), "Reconciled").get("status") == "True",
                   timeout=70, message="recovers once the issuer exists")
    finally:
        cluster.kubectl("delete", "clusterissuer", "does-not-exist", check=False)


def test_a_spec_the_core_api_rejects_is_refused_whole(cluster, namespace):
    # The schema lets any env name through; the core API does not accept "=" in one.
    cluster.apply(app_manifest("badenv", namespace, env=[{"name": "A=B", "value": "x"}]))
    app = eventually(lambda: condition(cluster.app(namespace, "badenv"), "Reconciled").get("reason") == "InvalidSpec"
                     and cluster.app(namespace, "badenv"))
    assert "Deployment" in condition(app, "Reconciled")["message"]
    assert cluster.get(SERVICE, namespace, "badenv") is None


def test_secret_values_never_reach_status_events_or_logs(cluster, namespace, operator):
    secret_value = "s3cr3t-value-that-must-not-leak"
    cluster.apply(app_manifest("secretive", namespace, env=[{"name": "TOKEN", "value": secret_value},
                                                            {"name": "A=B", "value": secret_value}]))
    eventually(lambda: condition(cluster.app(namespace, "secretive"), "Reconciled").get("status") == "False")
    assert secret_value not in str(cluster.app(namespace, "secretive")["status"])
    assert not any(secret_value in e for e in events_for(cluster, namespace, "secretive"))
    assert secret_value not in operator.log_tail(10_000)
