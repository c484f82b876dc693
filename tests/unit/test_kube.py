"""The REST layer: the body of a server-side apply (YAML that carries any string the spec can
hold), and requests as a real HTTP server receives them."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Iterator

import pycurl
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fastapi_operator.kube import APPLY_PATCH, DEPLOYMENT, Kube, apply_body, base_url
from fastapi_operator.metrics import REGISTRY


def test_every_character_reaches_the_yaml_decoder_as_something_it_accepts():
    value = "héllo 👋 \x7f\x80\x85\x9f\xa0\u2028\u2029\u202a\ufffe\uffff\ufffd tab\there \x01 \\u0085 \""
    body = apply_body({"env": [{"name": "GREETING", "value": value}]})
    assert b"\\ud83d" not in body, "a surrogate-pair escape, which the API server's YAML decoder refuses"
    assert "👋".encode() in body
    # PyYAML, like the API server's decoder, refuses DEL and C1 controls unless escaped, and folds NEL and LS.
    assert yaml.safe_load(body.decode())["env"][0]["value"] == value
    assert json.loads(body)["env"][0]["value"] == value


class Recorded(http.server.BaseHTTPRequestHandler):
    """An HTTP server that answers from a script and records what it was sent."""

    script: list[tuple[int, dict[str, str], bytes]] = []
    received: list[tuple[str, str, dict[str, str], bytes]] = []

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        status, headers, body = self.script.pop(0)
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PATCH = do_POST = do_DELETE = answer

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[Kube, type[Recorded]]]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorded)
    Recorded.script, Recorded.received = [], []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{httpd.server_address[1]}")
    configuration.api_key = {"authorization": "Bearer sekret"}
    try:
        yield Kube(client.ApiClient(configuration)), Recorded
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_request_carries_its_query_body_content_type_and_token_and_returns_the_answer(server):
    kube, recorded = server
    recorded.script = [(200, {"Content-Type": "application/json"}, b'{"kind": "Deployment"}')]
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop", "namespace": "shop"},
                "spec": {"template": {"metadata": {"annotations": {"greeting": "👋"}}}}}
    assert kube.apply(manifest, field_manager="fm") == {"kind": "Deployment"}
    method, path, headers, body = recorded.received[0]
    assert method == "PATCH"
    assert path.endswith("/deployments/shop?fieldManager=fm&force=true")
    assert headers["Content-Type"] == APPLY_PATCH and headers["authorization"] == "Bearer sekret"
    assert body == apply_body(manifest) and json.loads(body) == manifest


def test_a_throttled_request_is_sent_again_after_the_wait_asked_and_an_error_keeps_its_status(server):
    kube, recorded = server
    recorded.script = [(429, {"Retry-After": "0"}, b""), (200, {}, b'{"items": [{"a": 1}]}'),
                       (404, {}, b'{"details": {"name": "gone"}}')]
    assert kube.list(DEPLOYMENT, "shop", label_selector="app in (x,y)") == [{"a": 1}]
    assert [path for _, path, _, _ in recorded.received] == [
        "/apis/apps/v1/namespaces/shop/deployments?labelSelector=app+in+%28x%2Cy%29"] * 2
    assert recorded.received[0][2].get("Content-Type") is None, "a GET has no body and says so"
    assert kube.get(DEPLOYMENT, "shop", "gone") is None
    recorded.script = [(500, {}, b'{"message": "boom"}')]
    with pytest.raises(ApiException) as raised:
        kube.request("GET", "/api/v1/namespaces")
    assert raised.value.status == 500 and json.loads(raised.value.body)["message"] == "boom"


def counted() -> tuple[float, float]:
    """The GETs in rest_client_requests_total, and the watches among them."""
    samples = [sample for metric in REGISTRY.collect() for sample in metric.samples]
    return (sum(s.value for s in samples if s.name == "rest_client_requests_total" and s.labels["method"] == "GET"),
            sum(s.value for s in samples if s.name == "fastapi_operator_watch_requests_total"))


def test_a_watch_yields_each_event_of_the_stream_and_is_counted_as_a_watch(server):
    kube, recorded = server
    events = [{"type": "ADDED", "object": {"metadata": {"name": str(i)}}} for i in range(3)]
    recorded.script = [(200, {}, b"\n".join(json.dumps(event).encode() for event in events) + b"\n"),
                       (200, {}, b'{"items": []}')]
    gets, watches = counted()
    assert list(kube.watch(DEPLOYMENT, None, "a=b", "7", 5, 5)) == events
    assert recorded.received[0][1] == ("/apis/apps/v1/deployments?watch=true&resourceVersion=7"
                                       "&allowWatchBookmarks=true&timeoutSeconds=5&labelSelector=a%3Db")
    kube.list(DEPLOYMENT, "shop")
    # Two GETs, one of them a watch: the reads are the GETs less the watches (make bench's count).
    assert tuple(now - then for now, then in zip(counted(), (gets, watches))) == (2, 1)


def test_a_kubeconfigs_tls_server_name_is_verified_while_its_address_is_connected_to():
    configuration = client.Configuration(host="https://10.0.0.7:6443/prefix")
    assert base_url(configuration) == ("https://10.0.0.7:6443/prefix", [])
    configuration.tls_server_name = "kubernetes.internal"
    url, options = base_url(configuration)
    assert url == "https://kubernetes.internal:6443/prefix"
    assert options == [(pycurl.CONNECT_TO, ["kubernetes.internal:6443:10.0.0.7:6443"])]
