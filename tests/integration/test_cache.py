"""The cache the operator reads from (cache.py), and the preconditions that keep a lagging cache
from overwriting someone else's object, against the real API server."""

from __future__ import annotations

import threading

import pytest
from kubernetes.client.exceptions import ApiException

from fastapi_operator.cache import Cache, Informer, Source, kept_whole
from fastapi_operator.kube import SERVICE, Kind, is_replaced
from tests.harness import eventually

SELECTOR = "app.kubernetes.io/managed-by=fastapi-operator"


def service(namespace: str, name: str, labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"ports": [{"port": 80}]}}


def test_the_cache_lists_then_follows_every_change_and_knows_a_missing_api(cluster, namespace):
    cluster.kube.apply(service(namespace, "before", {"app.kubernetes.io/managed-by": "fastapi-operator"}))
    cluster.kube.apply(service(namespace, "unlabelled"))
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def changed(kind: Kind, event_type: str, obj: dict) -> None:
        with lock:
            seen.append((event_type, obj["metadata"]["name"]))

    nothing = Kind("example.invalid/v1", "Nothing", "nothings")
    cache = Cache(cluster.kube, [(Source(SERVICE, namespace, SELECTOR), False), (Source(nothing), False)], changed)
    cache.start()
    try:
        assert cache.wait_synced(10), "the first listing never finished"
        assert cache.get(SERVICE, namespace, "before") is not None, "an object made before the start is missing"
        assert cache.get(SERVICE, namespace, "unlabelled") is None, "the label selector was not applied"
        assert "managedFields" not in cache.get(SERVICE, namespace, "before")["metadata"], "managedFields were kept"
        assert seen == [], "the first listing is not news"
        assert cache.informers[nothing][0].missing_api and cache.list(nothing) == []

        cluster.kube.apply(service(namespace, "after", {"app.kubernetes.io/managed-by": "fastapi-operator"}))
        eventually(lambda: cache.get(SERVICE, namespace, "after"), timeout=5, message="a new object in the cache")
        cluster.kubectl("label", "service", "after", "-n", namespace, "edited=yes")
        eventually(lambda: cache.get(SERVICE, namespace, "after")["metadata"]["labels"].get("edited") == "yes",
                   timeout=5, message="an edit in the cache")
        cluster.kubectl("delete", "service", "after", "-n", namespace)
        eventually(lambda: cache.get(SERVICE, namespace, "after") is None, timeout=5, message="a delete in the cache")
        with lock:
            assert [e for e in seen if e[1] == "after"] == [("ADDED", "after"), ("MODIFIED", "after"),
                                                          ("DELETED", "after")]
        assert [obj["metadata"]["name"] for obj in cache.list(SERVICE, namespace)] == ["before"]
    finally:
        cache.stop()


def test_the_first_listing_is_read_a_page_at_a_time_and_the_watch_follows_from_it(cluster, namespace):
    """A listing of thousands of objects at once is a high-water mark of memory the process keeps
    (kube.LIST_PAGE_SIZE): pages of two, here, for five objects."""
    labels = {"app.kubernetes.io/managed-by": "fastapi-operator"}
    for index in range(5):
        cluster.kube.apply(service(namespace, f"s{index}", labels))
    pages = list(cluster.kube.list_pages(SERVICE, namespace, SELECTOR, page_size=2))
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert len({page["metadata"]["resourceVersion"] for page in pages}) == 1, "the pages are not one snapshot"
    informer = Informer(cluster.kube, Source(SERVICE, namespace, SELECTOR), lambda *_: None, kept_whole, page_size=2)
    informer.start()
    try:
        assert informer.synced.wait(10), "the first listing never finished"
        assert sorted(obj["metadata"]["name"] for obj in informer.list()) == [f"s{index}" for index in range(5)]
        cluster.kube.apply(service(namespace, "s5", labels))  # the watch starts at the pages' snapshot
        eventually(lambda: informer.get(namespace, "s5"), timeout=5, message="a new object after a paged listing")
    finally:
        informer.stop()


def test_an_apply_or_delete_at_a_uid_that_is_gone_leaves_the_new_object_alone(cluster, namespace):
    """What the operator sends when its cache says the child is its own: if the object was
    deleted and made again by someone else since, the API server refuses it."""
    first = cluster.kube.apply(service(namespace, "taken"))
    cluster.kubectl("delete", "service", "taken", "-n", namespace)
    cluster.kubectl("create", "service", "clusterip", "taken", "--tcp=8080:8080", "-n", namespace)
    with pytest.raises(ApiException) as refused:
        cluster.kube.apply({**service(namespace, "taken"), "spec": {"ports": [{"port": 80}], "type": "NodePort"}},
                           uid=first["metadata"]["uid"])
    assert is_replaced(refused.value), refused.value
    assert cluster.kube.delete(SERVICE, namespace, "taken", uid=first["metadata"]["uid"]) is False
    survivor = cluster.get(SERVICE, namespace, "taken")
    assert survivor["spec"]["type"] == "ClusterIP" and survivor["metadata"]["uid"] != first["metadata"]["uid"]
