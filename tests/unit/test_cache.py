"""The cache's pure parts: label selection, which of two versions is newer, what is kept of an object."""

import json

from kubernetes.client.exceptions import ApiException

from fastapi_operator.cache import (
    Informer, OwnWrites, Source, _newer, is_news, kept_child, kept_whole, matches, without_managed_fields,
    without_subresource_fields,
)
from fastapi_operator.kube import FASTAPIAPP, Unreachable, decode, is_away, retry_after_seconds
from fastapi_operator.managed_fields import trie_of
from fastapi_operator.reconcile import by_verb


def labelled(**labels):
    return {"metadata": {"name": "x", "labels": labels}}


def test_equality_selectors_need_every_term():
    assert matches(labelled(a="1", b="2"), "a=1,b=2")
    assert not matches(labelled(a="1"), "a=1,b=2")
    assert not matches(labelled(a="2"), "a=1")
    assert matches({"metadata": {"name": "x"}}, None)


def test_an_older_resource_version_never_replaces_a_newer_one():
    held = {"metadata": {"resourceVersion": "120"}}
    assert not _newer({"metadata": {"resourceVersion": "119"}}, held)
    assert _newer({"metadata": {"resourceVersion": "1000"}}, held), "compared as numbers, not strings"
    assert _newer({"metadata": {"resourceVersion": "opaque"}}, held), "not integers: the latest seen wins"
    assert _newer({"metadata": {"resourceVersion": "1"}}, None)


def test_kinds_never_compared_field_by_field_keep_everything_but_managed_fields_and_the_last_applied_copy():
    obj = {"spec": {"a": 1}, "metadata": {"name": "x", "managedFields": [{}], "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"}}}
    kept = without_managed_fields(obj)
    assert kept == {"spec": {"a": 1}, "metadata": {"name": "x", "annotations": {"keep": "me"}}}
    assert obj["metadata"]["managedFields"] == [{}], "the original is not changed"


def test_children_keep_who_set_their_fields_but_not_who_set_their_status():
    own = {"manager": "fastapi-operator", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}
    hand = {"manager": "kubectl-edit", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}
    controller = {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                  "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}
    obj = {"metadata": {"name": "x", "managedFields": [own, hand, controller]}, "status": {"replicas": 1}}
    kept = without_subresource_fields(obj)
    as_kept = [{**entry, "fieldsV1": '{"f:spec":{}}'} for entry in (own, hand)]  # the tries as JSON text
    assert kept == {"metadata": {"name": "x", "managedFields": as_kept}, "status": {"replicas": 1}}
    assert [trie_of(entry) for entry in kept["metadata"]["managedFields"]] == [own["fieldsV1"], hand["fieldsV1"]]
    assert len(obj["metadata"]["managedFields"]) == 3 and obj["metadata"]["managedFields"][0] is own, \
        "the original is not changed"


def test_objects_decoded_one_at_a_time_share_their_field_names():
    text = b'{"metadata": {"name": "x", "managedFields": []}, "spec": {"template": {"spec": {}}}}'
    first, second = (without_subresource_fields(decode(text)) for _ in range(2))
    assert [id(k) for k in first["spec"]["template"]] == [id(k) for k in second["spec"]["template"]]
    first, second = (without_managed_fields(decode(text)) for _ in range(2))
    assert [id(k) for k in first["metadata"]] == [id(k) for k in second["metadata"]]


def test_children_decoded_one_at_a_time_share_their_managers_and_tries():
    """The children of one operator carry the same tries, managers and times: one copy of each
    is kept, not one per child."""
    text = (b'{"metadata": {"name": "x", "managedFields": [{"manager": "fastapi-operator", "operation": "Apply",'
            b' "time": "2026-12-06T05:50:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}}')
    first, second = ((kept_child(decode(text), None)["metadata"]["managedFields"][0]) for _ in range(2))
    assert first == second
    for key in ("manager", "time", "fieldsV1"):
        assert first[key] is second[key], key


def deployment_text(name: str, image: str, ready: int) -> bytes:
    """A Deployment as its watch sends it; its controller's status entry moves with `ready`."""
    entries = [{"manager": "fastapi-operator", "operation": "Apply", "time": "2026-12-06T05:50:00Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {}}}},
               {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                "time": f"2026-12-06T05:5{ready}:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]
    return json.dumps({
        "metadata": {"name": name, "uid": f"u-{name}", "resourceVersion": str(ready), "managedFields": entries,
                     "labels": {"app.kubernetes.io/managed-by": "fastapi-operator"}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
        "status": {"readyReplicas": ready, "conditions": [{"type": "Available", "reason": "MinimumReplicasAvailable"}]},
    }).encode()


def test_objects_kept_share_what_they_say_alike_and_keep_what_they_say():
    first, second = (kept_child(decode(deployment_text(name, "registry.example/shop:1.0", 1)), None)
                     for name in ("a", "b"))
    assert first == without_subresource_fields(decode(deployment_text("a", "registry.example/shop:1.0", 1)))
    assert first["spec"]["template"]["spec"]["containers"][0]["image"] is \
        second["spec"]["template"]["spec"]["containers"][0]["image"]
    assert first["status"]["conditions"][0]["reason"] is second["status"]["conditions"][0]["reason"]
    assert first["metadata"]["labels"]["app.kubernetes.io/managed-by"] is \
        second["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    app = kept_whole(decode(b'{"metadata": {"name": "a", "namespace": "shop"},'
                            b' "spec": {"image": "registry.example/shop:1.0"}}'), None)
    assert app["spec"]["image"] is first["spec"]["template"]["spec"]["containers"][0]["image"]
    assert app["metadata"]["name"] is first["metadata"]["name"], "an app's name, once for it and its children"


def test_a_progress_report_shares_the_held_version_and_an_edit_replaces_it():
    held = kept_child(decode(deployment_text("a", "shop:1.0", 1)), None)
    reported = kept_child(decode(deployment_text("a", "shop:1.0", 2)), held)
    assert reported["spec"] is held["spec"]
    assert reported["metadata"]["managedFields"] is held["metadata"]["managedFields"]
    assert reported["status"]["readyReplicas"] == 2 and held["status"]["readyReplicas"] == 1
    edited = kept_child(decode(deployment_text("a", "shop:2.0", 2)), reported)
    assert edited["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:2.0"
    assert held["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:1.0", "the held version is not changed"
    assert edited["status"] is reported["status"]


def test_events_group_changes_by_verb_in_order():
    assert by_verb(["Created Deployment n/a", "Created Service n/a", "Deleted Ingress n/a"]) == [
        ("Created", ["Deployment n/a", "Service n/a"]), ("Deleted", ["Ingress n/a"])]


def test_a_throttled_request_waits_as_asked_within_a_cap():
    assert retry_after_seconds("3", 0) == 3
    assert retry_after_seconds(None, 0) == 0.5 and retry_after_seconds(None, 2) == 2
    assert retry_after_seconds("600", 0) == 10
    assert retry_after_seconds("soon", 1) == 1


def test_only_a_version_the_cache_did_not_hold_is_news():
    def at(version: str) -> dict:
        return {"metadata": {"name": "shop", "resourceVersion": version}}

    assert not is_news("MODIFIED", at("7"), at("7")), "the operator's own write, its answer already held"
    assert not is_news("ADDED", at("7"), at("7"))
    assert is_news("MODIFIED", at("8"), at("7")) and is_news("ADDED", at("7"), None)
    assert is_news("DELETED", at("7"), at("7")), "a deletion is always news"


def test_an_event_that_arrives_while_the_operator_writes_waits_and_only_what_it_did_not_make_is_passed_on():
    def at(version: str) -> dict:
        return {"metadata": {"name": "shop", "resourceVersion": version}}

    key = ("shop", "shop")
    writes = OwnWrites()
    assert not writes.hold(key, "MODIFIED", at("4")), "no write in flight: passed on at once"

    writes.begin(key)
    assert writes.hold(key, "ADDED", at("5")), "the watch was faster than the write's answer"
    writes.written(key, "5")
    assert writes.end(key, drop_own=True) == [], "the write's own version: no news"

    writes.begin(key)
    writes.hold(key, "MODIFIED", at("6"))
    writes.hold(key, "MODIFIED", at("7"))  # a hand edit right after the write
    writes.written(key, "6")
    assert writes.end(key, drop_own=True) == [("MODIFIED", at("7"))]

    writes.begin(key)
    writes.hold(key, "MODIFIED", at("8"))  # someone else's, and the write then failed: no answer
    assert writes.end(key, drop_own=True) == [("MODIFIED", at("8"))]

    writes.begin(key)
    writes.hold(key, "DELETED", at("9"))
    writes.written(key, "9")
    assert writes.end(key, drop_own=True) == [("DELETED", at("9"))], "a deletion is always news"
    assert not writes.hold(key, "MODIFIED", at("10")) and writes.end(key, drop_own=True) == []

    # An app's own status write: held until the writer recorded its version, then passed on all the
    # same (the readiness clock reads it), so the handler knows it as the operator's own.
    writes.begin(key)
    writes.hold(key, "MODIFIED", at("11"))
    writes.written(key, "11")
    assert writes.end(key, drop_own=False) == [("MODIFIED", at("11"))]


def test_an_api_server_away_is_told_from_a_refusal():
    assert is_away(Unreachable("PATCH /x: Failed to connect"))
    assert is_away(ApiException(status=503, reason="Service Unavailable"))
    assert not is_away(ApiException(status=500, reason="failed to create typed patch object"))
    assert not is_away(ApiException(status=422, reason="Invalid"))
    assert not is_away(KeyError("x"))


class OneStream:
    """The watch's side of the API server: these events, then the stream ends."""

    def __init__(self, *events):
        self.events = events

    def watch(self, *_):
        yield from self.events


def app_at(version: str) -> dict:
    return {"apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
            "metadata": {"name": "a", "namespace": "n", "uid": "u", "resourceVersion": version}}


def test_a_writes_answer_arriving_after_the_objects_deletion_does_not_bring_it_back():
    """The namespace deleted while the app's status write was on its way: the deletion's watch
    event comes first, the write's answer (an older version) after it."""
    informer = Informer(OneStream({"type": "DELETED", "object": app_at("7")}), Source(FASTAPIAPP), lambda *_: None,
                        kept_whole)
    informer.objects[("n", "a")] = kept_whole(app_at("5"), None)
    informer.writing(("n", "a"))
    informer._watch("5")
    assert informer.get("n", "a") is None
    informer.observe(app_at("6"))
    assert informer.get("n", "a") is None, "a deleted app would be reconciled, and fail, forever"
    informer.written(("n", "a"))
    informer.observe(app_at("9"))  # made again under the same name
    assert informer.get("n", "a")["metadata"]["resourceVersion"] == "9"


def test_the_echo_of_a_version_already_kept_is_not_compacted_again():
    """The watch event of the operator's own write: the answer to the write was kept already."""
    compacted: list[str] = []

    def compact(obj: dict, held: dict | None) -> dict:
        compacted.append(obj["metadata"]["resourceVersion"])
        return kept_whole(obj, held)

    seen: list[tuple[str, str]] = []
    informer = Informer(OneStream({"type": "MODIFIED", "object": app_at("6")},
                                  {"type": "MODIFIED", "object": app_at("7")}),
                        Source(FASTAPIAPP), lambda _, event_type, obj: seen.append(
                            (event_type, obj["metadata"]["resourceVersion"])), compact)
    informer.observe(app_at("6"))
    answered = informer.get("n", "a")
    informer._watch("5")
    assert compacted == ["6", "7"], "the echo of version 6 was compacted again"
    assert seen == [("MODIFIED", "6"), ("MODIFIED", "7")]
    assert informer.get("n", "a")["metadata"]["resourceVersion"] == "7" and answered["metadata"]["resourceVersion"] == "6"
