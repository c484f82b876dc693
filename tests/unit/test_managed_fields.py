"""Reading managedFields: what the operator set, and what others added to guarded parts."""

from __future__ import annotations

import copy
import json

from fastapi_operator.guarded import is_guarded
from fastapi_operator.managed_fields import foreign_fields, removal_patch, sets_same_fields

from tests.unit.test_compare import DESIRED, OWNED, k, live_version


def _with_manager(live: dict, manager: str, fields: dict, subresource: str | None = None) -> dict:
    entry = {"manager": manager, "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}
    if subresource:
        entry["subresource"] = subresource
    live["metadata"]["managedFields"].append(entry)
    return live


def deployment_guard(path):
    return is_guarded("Deployment", path)


def test_the_operators_own_fields_match_what_it_applied():
    assert sets_same_fields(DESIRED, OWNED)


def test_a_new_desired_field_is_not_yet_owned():
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["template"]["spec"]["hostname"] = "x"
    assert not sets_same_fields(desired, OWNED)


def test_hand_added_pod_fields_are_foreign_and_removed_outermost_first():
    live = live_version()
    pod = live["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"] = {"runAsUser": 0}
    pod["containers"].append({"name": "sidecar", "image": "evil:1"})
    _with_manager(live, "kubectl-patch", {"f:spec": {"f:template": {"f:spec": {
        "f:hostNetwork": {},
        "f:containers": {
            k(name="app"): {"f:securityContext": {".": {}, "f:runAsUser": {}}},
            k(name="sidecar"): {".": {}, "f:name": {}, "f:image": {}},
        }}}}})
    found = foreign_fields(DESIRED, live, "fastapi-operator", deployment_guard)
    assert sorted(f.pointer for f in found) == [
        "/spec/template/spec/containers/0/securityContext",
        "/spec/template/spec/containers/1",
        "/spec/template/spec/hostNetwork",
    ]
    assert {f.dotted for f in found} >= {"spec.template.spec.containers[name=sidecar]"}
    patch = removal_patch(found, "7")
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    # The later list element goes before the earlier one, so indices stay valid.
    removals = [op["path"] for op in patch[1:]]
    assert removals.index("/spec/template/spec/containers/1") < removals.index(
        "/spec/template/spec/containers/0/securityContext")


def test_rollout_restart_scale_and_status_writers_are_not_foreign():
    live = live_version()
    live["spec"]["template"]["metadata"] = {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}
    _with_manager(live, "kubectl-rollout", {"f:spec": {"f:template": {"f:metadata": {"f:annotations": {
        ".": {}, "f:kubectl.kubernetes.io/restartedAt": {}}}}}})
    _with_manager(live, "kube-controller-manager", {"f:spec": {"f:replicas": {}}}, subresource="scale")
    _with_manager(live, "kube-controller-manager", {"f:status": {"f:replicas": {}}}, subresource="status")
    assert foreign_fields(DESIRED, live, "fastapi-operator", deployment_guard) == []


def test_a_value_someone_else_also_set_is_shared_not_foreign():
    live = live_version()
    _with_manager(live, "kubectl-edit", {"f:spec": {"f:template": {"f:spec": {"f:containers": {
        k(name="app"): {"f:image": {}}}}}}})
    assert foreign_fields(DESIRED, live, "fastapi-operator", deployment_guard) == []


def test_controller_annotations_on_an_ingress_are_guarded_and_others_are_not():
    desired = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "a", "annotations": {"cert-manager.io/cluster-issuer": "x"}}, "spec": {}}
    live = copy.deepcopy(desired)
    live["metadata"]["annotations"].update({"nginx.ingress.kubernetes.io/configuration-snippet": "evil",
                                            "external-dns.alpha.kubernetes.io/ttl": "60"})
    live["metadata"]["managedFields"] = [{"manager": "kubectl-annotate", "operation": "Update",
                                          "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {
                                              "f:nginx.ingress.kubernetes.io/configuration-snippet": {},
                                              "f:external-dns.alpha.kubernetes.io/ttl": {}}}}}]
    found = foreign_fields(desired, live, "fastapi-operator", lambda p: is_guarded("Ingress", p))
    assert [f.pointer for f in found] == ["/metadata/annotations/nginx.ingress.kubernetes.io~1configuration-snippet"]


def test_keys_in_tries_are_matched_by_value_not_by_text():
    # The API server writes keys with sorted fields; the desired object may order them otherwise.
    desired = {"spec": {"ports": [{"protocol": "TCP", "port": 80}]}}
    owned = {"f:spec": {"f:ports": {"k:" + json.dumps({"port": 80, "protocol": "TCP"}): {
        ".": {}, "f:port": {}, "f:protocol": {}}}}}
    assert sets_same_fields(desired, owned)
