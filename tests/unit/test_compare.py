"""Compare before write: what the API server adds or canonicalises is not a difference;
what someone changed, and what the spec dropped, is."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json

from fastapi_operator.compare import (
    HASH_PIECE_BYTES, _digest, applied_as_sent, changes_pod_template, needs_apply, remembered,
)


def _env(name: str, value: str) -> dict:
    return {"name": name, "value": value}


DESIRED = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "hello", "namespace": "shop", "labels": {"app": "hello"}},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "app", "image": "hello:1", "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}},
         "env": [_env("APP_VERSION", "1.1"), _env("SAMPLE_RATE", "0.5")]}]}}},
}


def k(**keys: str) -> str:
    return "k:" + json.dumps(keys, separators=(",", ":"))


# What the API server records for the operator's apply of DESIRED (same shape as a real one).
OWNED = {
    "f:metadata": {"f:labels": {"f:app": {}}},
    "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {k(name="app"): {
        ".": {}, "f:name": {}, "f:image": {},
        "f:resources": {"f:requests": {"f:cpu": {}, "f:memory": {}}},
        "f:env": {k(name="APP_VERSION"): {".": {}, "f:name": {}, "f:value": {}},
                  k(name="SAMPLE_RATE"): {".": {}, "f:name": {}, "f:value": {}}},
    }}}}},
}


# A live object at one resourceVersion is one content (compare.py remembers answers by it): each
# made here, edited or not, is a version of its own.
VERSIONS = itertools.count(7)


def live_version(desired: dict = DESIRED, owned: dict = OWNED) -> dict:
    live = copy.deepcopy(desired)
    live["metadata"].update({"uid": "u", "resourceVersion": str(next(VERSIONS)), "labels": {"app": "hello", "extra": "x"},
                             "managedFields": [{"manager": "fastapi-operator", "operation": "Apply",
                                                "fieldsType": "FieldsV1", "fieldsV1": owned}]})
    container = live["spec"]["template"]["spec"]["containers"][0]
    container.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"})
    container["resources"]["requests"]["cpu"] = "500m"
    live["status"] = {"replicas": 2}
    return live


def test_server_defaults_and_canonical_quantities_are_not_differences():
    assert needs_apply(DESIRED, live_version()) is False


def test_a_missing_object_needs_apply():
    assert needs_apply(DESIRED, None) is True


def test_an_object_the_operator_never_applied_needs_apply():
    live = live_version()
    live["metadata"]["managedFields"] = []
    assert needs_apply(DESIRED, live) is True


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


def test_strings_that_look_like_numbers_are_compared_as_strings():
    for name, new in (("APP_VERSION", "1.10"), ("SAMPLE_RATE", "500m")):
        desired = copy.deepcopy(DESIRED)
        env = desired["spec"]["template"]["spec"]["containers"][0]["env"]
        next(e for e in env if e["name"] == name)["value"] = new
        assert needs_apply(desired, live_version()) is True, name


def test_a_key_the_spec_dropped_needs_apply_even_though_every_desired_value_is_live():
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["template"]["spec"]["containers"][0]["env"].pop()
    assert needs_apply(desired, live_version()) is True


def test_a_whole_field_the_spec_dropped_needs_apply():
    desired = copy.deepcopy(DESIRED)
    del desired["spec"]["template"]["spec"]["containers"][0]["env"]
    assert needs_apply(desired, live_version()) is True


def test_replicas_left_to_an_autoscaler_needs_apply_while_the_operator_still_owns_them():
    desired = copy.deepcopy(DESIRED)
    del desired["spec"]["replicas"]
    assert needs_apply(desired, live_version()) is True
    handed_off = copy.deepcopy(OWNED)
    del handed_off["f:spec"]["f:replicas"]
    assert needs_apply(desired, live_version(owned=handed_off)) is False


def test_an_empty_string_the_api_server_drops_is_not_a_difference_but_a_value_set_over_it_is():
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = ""
    live = live_version(desired)
    del live["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]  # omitempty: the server drops it
    assert needs_apply(desired, live) is False
    live["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "set by hand"
    live["metadata"]["resourceVersion"] = str(next(VERSIONS))
    assert needs_apply(desired, live) is True


def test_an_answer_holds_for_one_version_of_the_live_object_and_one_desired_object():
    live = live_version()
    assert needs_apply(DESIRED, live) is False
    # Not a sequence the API server makes (a new content is a new resourceVersion): it shows that
    # the answer for this version is remembered, not computed again.
    live["spec"]["replicas"] = 5
    assert needs_apply(DESIRED, live) is False
    live["metadata"]["resourceVersion"] = str(next(VERSIONS))
    assert needs_apply(DESIRED, live) is True, "a new version is compared again"
    desired = copy.deepcopy(DESIRED)
    desired["spec"]["replicas"] = 5
    assert needs_apply(desired, live) is False, "so is a new desired object"
    assert changes_pod_template(desired, live) is False
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "hello:2"
    live["metadata"]["resourceVersion"] = str(next(VERSIONS))
    assert changes_pod_template(desired, live) is True


def test_a_controllers_status_report_leaves_a_remembered_answer_standing_and_an_edit_does_not():
    asked: list[str] = []

    @remembered
    def question(desired: dict, live: dict) -> bool:
        asked.append(live["metadata"]["resourceVersion"])
        return True

    live = live_version()
    assert question(DESIRED, live) is True
    # The Deployment controller reports its pods: a new resourceVersion, a new status, and its
    # own managedFields entry for the status subresource.
    reported = copy.deepcopy(live)
    reported["metadata"]["resourceVersion"] = str(next(VERSIONS))
    reported["metadata"]["managedFields"].append({"manager": "kube-controller-manager", "operation": "Update",
                                                  "subresource": "status", "fieldsType": "FieldsV1",
                                                  "fieldsV1": {"f:status": {"f:readyReplicas": {}}}})
    reported["status"] = {"replicas": 2, "readyReplicas": 2}
    assert question(DESIRED, reported) is True
    assert asked == [live["metadata"]["resourceVersion"]], "a status report is not a question again"
    # Then it marks the revision: an annotation the operator does not set, under its own manager.
    revised = copy.deepcopy(reported)
    revised["metadata"]["resourceVersion"] = str(next(VERSIONS))
    revised["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    revised["metadata"]["managedFields"].append({
        "manager": "kube-controller-manager", "operation": "Update", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}}}})
    revised["metadata"]["labels"]["team"] = "a"  # and someone labels it: a label the operator does not set
    assert question(DESIRED, revised) is True
    assert asked == [live["metadata"]["resourceVersion"]], "what no question reads is not a question again"
    relabelled = copy.deepcopy(revised)
    relabelled["metadata"]["resourceVersion"] = str(next(VERSIONS))
    relabelled["metadata"]["labels"]["app"] = "other"  # a label the operator sets
    question(DESIRED, relabelled)
    edited = copy.deepcopy(relabelled)
    edited["metadata"]["resourceVersion"] = str(next(VERSIONS))
    edited["spec"]["replicas"] = 3
    question(DESIRED, edited)
    reapplied = copy.deepcopy(edited)
    reapplied["metadata"]["resourceVersion"] = str(next(VERSIONS))
    reapplied["metadata"]["managedFields"][0]["fieldsV1"] = {"f:spec": {"f:replicas": {}}}  # the operator's fields
    question(DESIRED, reapplied)
    assert asked[1:] == [relabelled["metadata"]["resourceVersion"], edited["metadata"]["resourceVersion"],
                         reapplied["metadata"]["resourceVersion"]]


def test_the_answer_to_the_operators_own_apply_is_taken_without_comparing():
    served = live_version()
    served["spec"]["replicas"] = 5  # a difference a comparison would find (not one an apply answers with)
    applied_as_sent(DESIRED, served)
    assert needs_apply(DESIRED, served) is False and changes_pod_template(DESIRED, served) is False
    served["metadata"]["resourceVersion"] = str(next(VERSIONS))
    served["metadata"]["labels"]["app"] = "other"
    assert needs_apply(DESIRED, served) is True, "a later version is compared"


def test_an_object_hashed_in_pieces_has_the_digest_of_all_of_it():
    """Pieces small enough that hashlib keeps the GIL, the same digest as one pass: every byte
    counts once, in order, across the pieces' edges."""
    for size in (1, HASH_PIECE_BYTES - 10, HASH_PIECE_BYTES * 3 + 5):
        obj = {"x": "y" * size}
        whole = hashlib.blake2b(json.dumps(obj, separators=(",", ":")).encode(), digest_size=16).digest()
        assert _digest(obj) == whole, size
    changed_at_an_edge = {"x": "y" * (HASH_PIECE_BYTES - 7) + "z" + "y" * HASH_PIECE_BYTES}
    assert _digest(changed_at_an_edge) != _digest({"x": "y" * (2 * HASH_PIECE_BYTES - 6)})
