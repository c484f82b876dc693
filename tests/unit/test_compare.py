"""Compare before write: what the API server adds or canonicalises is not a difference;
what someone changed is."""

from __future__ import annotations

import copy

from fastapi_operator.compare import needs_apply


DESIRED = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "hello", "labels": {"app": "hello"}},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "app", "image": "hello:1", "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}},
         "env": []}]}}},
}


def live_version() -> dict:
    live = copy.deepcopy(DESIRED)
    live["metadata"].update({"uid": "u", "resourceVersion": "7", "labels": {"app": "hello", "extra": "x"}})
    container = live["spec"]["template"]["spec"]["containers"][0]
    container.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"})
    container["resources"]["requests"]["cpu"] = "500m"
    del container["env"]
    live["status"] = {"replicas": 2}
    return live


def test_server_defaults_and_canonical_quantities_are_not_differences():
    assert needs_apply(DESIRED, live_version()) is False


def test_a_missing_object_needs_apply():
    assert needs_apply(DESIRED, None) is True


def test_an_edited_field_is_drift():
    live = live_version()
    live["spec"]["replicas"] = 5
    assert needs_apply(DESIRED, live) is True


def test_a_removed_label_is_drift():
    live = live_version()
    del live["metadata"]["labels"]["app"]
    assert needs_apply(DESIRED, live) is True


def test_an_extra_list_item_is_drift():
    live = live_version()
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "evil:1"})
    assert needs_apply(DESIRED, live) is True


def test_a_different_quantity_is_drift():
    live = live_version()
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "2Gi"
    assert needs_apply(DESIRED, live) is True
