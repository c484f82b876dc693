"""A thin, synchronous REST layer over the kubernetes client's ApiClient.

Every kind the operator touches is listed here with its path, so nothing needs API discovery
at startup (which costs seconds on a large cluster) and every write goes through `apply`,
server-side apply with one field manager.
"""

from __future__ import annotations

import datetime
import functools
import http
import json
import re
import threading
import time
import urllib.parse
from typing import Any, Iterator, NamedTuple
from urllib.parse import urlencode

import orjson
import pycurl
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .api import API_VERSION, KIND
from .errors import MissingAPI
# The kinds live in kinds.py, the one registry; imported here for the modules that use both.
from .kinds import (  # noqa: F401
    AUTOSCALER, CERTIFICATE, CLUSTER_ISSUER, CRON_JOB, DEPLOYMENT, DISRUPTION_BUDGET, EVENT, FASTAPIAPP, GATEWAY, HOST_CLAIM,
    HTTP_ROUTE, INGRESS, INGRESS_CLASS, JOB, KINDS, LEASE, LISTENER_SET, MIDDLEWARE, NETWORK_POLICY, SERVICE,
    WATCHED_CHILD_KINDS, Kind,
)
from .meta import FIELD_MANAGER, OPERATOR_NAME
from .metrics import REST_LATENCY, REST_REQUESTS, WATCH_REQUESTS


REQUEST_TIMEOUT_SECONDS = 30
THROTTLED_ATTEMPTS = 5
# A refused connection is tried again at once this often in all (urllib3's default was 3 retries).
CONNECT_ATTEMPTS = 4
THROTTLED_MAX_WAIT_SECONDS = 10.0
APPLY_PATCH = "application/apply-patch+yaml"
# Objects per page of a listing. The 10,000 Deployments of a big cluster in one answer are 60 MB
# of JSON and 180 MB decoded, all at once, and the process keeps that high-water mark: restarted
# at 10,000 apps, 955 MiB against 487 converged. Measured at 1,000 realistic apps, restarted:
# 177 MiB unpaged or in pages of 500 (client-go's), 133 in pages of 100, 129 in pages of 50.
LIST_PAGE_SIZE = 100
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


# What YAML may not carry literally inside a string, though JSON may: DEL, the C1 controls and
# U+FFFE/U+FFFF, which it forbids, and NEL, LS and PS, which YAML 1.1 folds as line breaks.
# Matched in the body's UTF-8, which is self-synchronizing: a match is always one whole character.
YAML_ESCAPED = re.compile(b"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|\xef\xbf[\xbe\xbf]")


# An apply that names a resourceVersion is refused (409) unless the object is at that version,
# and makes the object when there is none. No object is ever at "1": etcd's first write is
# revision 2, and resourceVersions are the revisions of writes. So this makes an apply create-only.
NO_OBJECT_RESOURCE_VERSION = "1"


def apply_body(body: Any) -> bytes:
    """A server-side apply body: JSON, which is YAML, with every character literal except those
    YAML forbids. The client's own encoding escapes everything outside ASCII, and the API server's
    YAML decoder refuses the surrogate-pair escapes of any character beyond the BMP (an emoji in
    an env value); the characters are only ever inside strings, where the escapes are valid.
    orjson writes every character literally, as the standard library's `ensure_ascii=False`
    does, for a tenth of the CPU; the few characters YAML forbids are then escaped."""
    return YAML_ESCAPED.sub(lambda match: b"\\u%04x" % ord(match.group().decode()), orjson.dumps(body))


def decode(data: bytes) -> Any:
    """JSON from the API server. orjson decodes it several times faster than the standard
    library and reuses one string per field name across objects, so the 1,000 Deployments the
    cache holds share their keys instead of holding a copy each."""
    return orjson.loads(data)


def kind_of(manifest: dict[str, Any]) -> Kind:
    return KINDS[(manifest["apiVersion"], manifest["kind"])]


def missing_api_error(kind: Kind) -> MissingAPI:
    return MissingAPI(
        f"the cluster has no {kind.kind} API ({kind.plural}.{kind.group or 'core'}): "
        f"install its CRDs (cert-manager for ClusterIssuer and Certificate, Traefik for "
        f"Middleware, the Gateway API's standard channel for HTTPRoute and ListenerSet, the Prometheus "
        f"Operator for PodMonitor, the operator's crds/ for HostClaim), or change the spec so the app does not need it"
    )


# What an API server answers while it shuts down or starts (and a proxy in front of it meanwhile).
AWAY_STATUSES = frozenset({502, 503, 504})


def is_away(error: Exception) -> bool:
    """The API server could not be reached, or said it cannot serve now: a retry will do."""
    return isinstance(error, Unreachable) or (isinstance(error, ApiException) and error.status in AWAY_STATUSES)


def is_missing_resource_type(error: ApiException) -> bool:
    """A 404 for an unknown resource type, as opposed to a 404 for an object that is absent."""
    try:
        details = json.loads(error.body or "{}").get("details") or {}
    except ValueError:
        return True
    return not details.get("name")


class Unreachable(ConnectionError):
    """No answer from the API server: refused, reset, or timed out (its message says which)."""


class Answer(NamedTuple):
    status: int
    retry_after: str | None  # the Retry-After header, when a throttled request should wait
    data: bytes


class Connection:
    """The API server's address and credentials, and one libcurl handle per thread, which keeps
    its connection open between requests. libcurl reads each answer's status line and headers in
    C; urllib3 over http.client (which parses headers with the email package) cost about three
    times the client CPU per request, the largest share of the operator's CPU per new app
    (docs/performance.md). The kubernetes client still reads the kubeconfig or the pod's
    credentials (`load_api_client`); nothing else of it is used here."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api = api_client
        configuration = api_client.configuration
        # rest_client_requests_total's host label, as client-go reports it.
        self.host_label = configuration.host.rstrip("/").split("://", 1)[-1]
        self.host, connect_to = base_url(configuration)
        self.options = curl_options(configuration) + connect_to
        self.handles = threading.local()
        self.connect_attempts = CONNECT_ATTEMPTS if configuration.retries is not False else 1
        self.latency = {method: REST_LATENCY.labels(method, self.host_label) for method in HTTP_METHODS}
        self.counted: dict[tuple[int, str], Any] = {}

    def headers(self, content_type: str | None) -> list[str]:
        """Accept, Content-Type and the bearer token, read at each request: in a pod the client
        re-reads the projected token file when it expires (its refresh hook)."""
        headers = {"Accept": "application/json", "Expect": ""}
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(self.api.default_headers)
        bearer = self.api.configuration.auth_settings().get("BearerToken")
        if bearer and bearer["value"]:
            headers[bearer["key"]] = bearer["value"]
        return [f"{name}: {value}" for name, value in headers.items()]

    def handle(self, method: str, path: str, query: list[tuple[str, str]] | None, body: bytes | None,
               content_type: str | None) -> pycurl.Curl:
        """This thread's handle, set for one request: its connection is reused when still open."""
        curl = getattr(self.handles, "curl", None)
        if curl is None:
            curl = self.handles.curl = pycurl.Curl()
        else:
            curl.reset()
        for option, value in self.options:
            curl.setopt(option, value)
        curl.setopt(pycurl.URL, f"{self.host}{path}?{query_string(tuple(query))}" if query else f"{self.host}{path}")
        curl.setopt(pycurl.HTTPHEADER, self.headers(content_type))
        if body is not None:
            curl.setopt(pycurl.POSTFIELDS, body)
        curl.setopt(pycurl.CUSTOMREQUEST, method)
        return curl

    def send(self, method: str, path: str, query: list[tuple[str, str]] | None, body: bytes | None,
             content_type: str | None) -> Answer:
        """One request and its whole answer, counted in rest_client_requests_total and its latency.
        A connection refused is tried again at once, as urllib3 did (an API server restarting)."""
        for attempt in range(self.connect_attempts):
            curl = self.handle(method, path, query, body, content_type)
            chunks: list[bytes] = []
            headers: list[bytes] = []
            curl.setopt(pycurl.WRITEFUNCTION, chunks.append)
            curl.setopt(pycurl.HEADERFUNCTION, headers.append)
            curl.setopt(pycurl.TIMEOUT_MS, REQUEST_TIMEOUT_SECONDS * 1000)
            started = time.monotonic()
            try:
                curl.perform()
                break
            except pycurl.error as error:
                if error.args[0] != pycurl.E_COULDNT_CONNECT or attempt + 1 == self.connect_attempts:
                    raise Unreachable(f"{method} {path}: {error.args[-1]}") from None
        self.latency[method].observe(time.monotonic() - started)
        status = curl.getinfo(pycurl.RESPONSE_CODE)
        self.count(status, method)
        # Only a throttled request waits as Retry-After asks: the headers are not read otherwise.
        retry_after = header_value(headers, b"retry-after") if status == 429 else None
        return Answer(status, retry_after, b"".join(chunks))

    def stream(self, path: str, query: list[tuple[str, str]], read_timeout_seconds: float) -> Iterator[bytes]:
        """The lines of a streamed answer (a watch) as they arrive, until the server ends it.
        libcurl's multi interface hands over what has arrived at each wake-up."""
        curl = self.handle("GET", path, query, None, None)
        received = bytearray()
        headers: list[bytes] = []
        curl.setopt(pycurl.WRITEFUNCTION, received.extend)
        curl.setopt(pycurl.HEADERFUNCTION, headers.append)
        curl.setopt(pycurl.CONNECTTIMEOUT, REQUEST_TIMEOUT_SECONDS)
        # No byte for this long: the connection is taken for dead.
        curl.setopt(pycurl.LOW_SPEED_LIMIT, 1)
        curl.setopt(pycurl.LOW_SPEED_TIME, max(int(read_timeout_seconds), 1))
        multi = pycurl.CurlMulti()
        multi.add_handle(curl)
        try:
            while True:
                code, running = multi.perform()
                while code == pycurl.E_CALL_MULTI_PERFORM:
                    code, running = multi.perform()
                end = received.rfind(b"\n") + 1
                # An error's answer is read whole, below; a watch's lines go on as they come.
                if end and curl.getinfo(pycurl.RESPONSE_CODE) == 200:
                    lines = bytes(received[:end]).split(b"\n")
                    del received[:end]
                    yield from (line for line in lines if line.strip())
                if not running:
                    break
                multi.select(1.0)
            _, _, failed = multi.info_read()
        finally:
            multi.remove_handle(curl)
            multi.close()
        status = curl.getinfo(pycurl.RESPONSE_CODE)
        if failed:
            raise Unreachable(f"GET {path}: {failed[0][2]}")
        self.count(status, "GET")
        WATCH_REQUESTS.inc()
        if not 200 <= status < 300:
            raise ApiException(status=status, reason=reason(status), body=bytes(received).decode(errors="replace"))
        if received.strip():
            yield bytes(received)

    def count(self, status: int, method: str) -> None:
        counter = self.counted.get((status, method))
        if counter is None:
            counter = self.counted[(status, method)] = REST_REQUESTS.labels(str(status), method, self.host_label)
        counter.inc()


@functools.lru_cache(maxsize=64)
def query_string(query: tuple[tuple[str, str], ...]) -> str:
    """Most requests carry one of a few queries (an apply's field manager and force): encoded once."""
    return urlencode(query)


def curl_options(configuration: client.Configuration) -> list[tuple[int, Any]]:
    """The kubeconfig's (or the pod's) TLS, client certificate and proxy, as libcurl options."""
    # HTTP/1.1: each thread has a connection of its own, so HTTP/2's streams share nothing, and
    # its framing (header compression, flow control) was CPU in libcurl and nghttp2: about a
    # tenth of the operator's CPU per new app (docs/performance.md).
    options: list[tuple[int, Any]] = [(pycurl.NOSIGNAL, 1), (pycurl.TCP_NODELAY, 1),
                                      (pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)]
    if configuration.verify_ssl:
        if configuration.ssl_ca_cert:
            options.append((pycurl.CAINFO, configuration.ssl_ca_cert))
        if configuration.assert_hostname is False:
            options.append((pycurl.SSL_VERIFYHOST, 0))
    else:
        options += [(pycurl.SSL_VERIFYPEER, 0), (pycurl.SSL_VERIFYHOST, 0)]
    if configuration.cert_file:
        options.append((pycurl.SSLCERT, configuration.cert_file))
    if configuration.key_file:
        options.append((pycurl.SSLKEY, configuration.key_file))
    if configuration.proxy:
        options.append((pycurl.PROXY, configuration.proxy))
        if configuration.no_proxy:
            options.append((pycurl.NOPROXY, configuration.no_proxy))
    return options


def base_url(configuration: client.Configuration) -> tuple[str, list[tuple[int, Any]]]:
    """The URL requests go to, and the options that go with it: with a kubeconfig's
    `tls-server-name`, the URL names that server (so its certificate is verified for it) and
    libcurl connects to the address the kubeconfig gives."""
    host = configuration.host.rstrip("/")
    name = getattr(configuration, "tls_server_name", None)
    if not name:
        return host, []
    address = urllib.parse.urlsplit(host)
    port = address.port or 443
    named = address._replace(netloc=f"{name}:{port}").geturl()
    target = f"[{address.hostname}]" if ":" in (address.hostname or "") else address.hostname
    return named, [(pycurl.CONNECT_TO, [f"{name}:{port}:{target}:{port}"])]


def header_value(lines: list[bytes], name: bytes) -> str | None:
    for line in lines:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().decode("latin-1")
    return None


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class Kube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.connection = Connection(api_client)

    def request(self, method: str, path: str, *, body: Any = None, query: list[tuple[str, str]] | None = None,
                content_type: str = "application/json") -> Any:
        if body is None:
            encoded, content_type = None, None
        elif content_type == APPLY_PATCH:
            encoded = apply_body(body)
        else:
            encoded = orjson.dumps(body)
        for attempt in range(THROTTLED_ATTEMPTS):
            answer = self.connection.send(method, path, query, encoded, content_type)
            if answer.status == 429 and attempt + 1 < THROTTLED_ATTEMPTS:
                # API Priority and Fairness turned the request away: wait as long as it asks.
                time.sleep(retry_after_seconds(answer.retry_after, attempt))
                continue
            break
        if not 200 <= answer.status < 300:
            raise ApiException(status=answer.status, reason=reason(answer.status),
                               body=answer.data.decode(errors="replace"))
        return decode(answer.data) if answer.data else None

    def watch(self, kind: Kind, namespace: str | None, label_selector: str | None, resource_version: str,
              timeout_seconds: int, read_timeout_seconds: float) -> Iterator[dict[str, Any]]:
        """The watch events after `resource_version`, bookmarks included, until the server ends the stream."""
        query = [("watch", "true"), ("resourceVersion", resource_version), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", str(timeout_seconds))]
        if label_selector:
            query.append(("labelSelector", label_selector))
        for line in self.connection.stream(kind.path(namespace), query, read_timeout_seconds):
            yield decode(line)

    def list_pages(self, kind: Kind, namespace: str | None, label_selector: str | None,
                   page_size: int = LIST_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """A listing a page at a time, each a list answer of its own; all pages are one snapshot,
        at the resourceVersion each names. A page asked for after etcd compacted that snapshot
        away is refused with 410, as a too old watch is."""
        query = [("limit", str(page_size))] + ([("labelSelector", label_selector)] if label_selector else [])
        page = self.request("GET", kind.path(namespace), query=query)
        yield page
        while page["metadata"].get("continue"):
            page = self.request("GET", kind.path(namespace), query=query + [("continue", page["metadata"]["continue"])])
            yield page

    def get(self, kind: Kind, namespace: str | None, name: str, *, required_api: bool = False) -> dict | None:
        """The object, or None when it (or, unless `required_api`, its whole API) is absent."""
        try:
            return self.request("GET", kind.path(namespace, name))
        except ApiException as error:
            if error.status != 404:
                raise
            if required_api and is_missing_resource_type(error):
                raise missing_api_error(kind) from error
            return None

    def list(self, kind: Kind, namespace: str | None = None, label_selector: str | None = None) -> list[dict]:
        query = [("labelSelector", label_selector)] if label_selector else []
        try:
            return self.request("GET", kind.path(namespace), query=query).get("items", [])
        except ApiException as error:
            if error.status == 404:
                return []
            raise

    def apply(self, manifest: dict[str, Any], *, dry_run: bool = False,
              field_manager: str = FIELD_MANAGER, uid: str | None = None, create_only: bool = False) -> dict[str, Any]:
        """Server-side apply. `force` takes back fields someone else edited, which is how drift
        is repaired; it is only ever called on objects this operator owns. With `uid`, the object
        the operator judged to be its own: one deleted and made again by someone else since is
        refused, not overwritten. With `create_only`, an object of that name that exists
        at all is refused (409), so one the operator has not seen is never written over."""
        kind = kind_of(manifest)
        metadata = manifest["metadata"]
        if uid:
            manifest = {**manifest, "metadata": {**metadata, "uid": uid}}
        elif create_only:
            manifest = {**manifest, "metadata": {**metadata, "resourceVersion": NO_OBJECT_RESOURCE_VERSION}}
        try:
            return self.request(
                "PATCH", kind.path(metadata.get("namespace"), metadata["name"]), body=manifest,
                query=[("fieldManager", field_manager), ("force", "true")] + ([("dryRun", "All")] if dry_run else []),
                content_type=APPLY_PATCH,
            )
        except ApiException as error:
            if error.status == 404 and is_missing_resource_type(error):
                raise missing_api_error(kind) from error
            raise

    def create(self, manifest: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create, never overwrite: the API server answers 409 when the name is taken, which
        makes a first-come claim atomic across operators."""
        kind = kind_of(manifest)
        return self.request("POST", kind.path(manifest["metadata"].get("namespace")), body=manifest,
                          query=[("fieldManager", FIELD_MANAGER)] + ([("dryRun", "All")] if dry_run else []))

    def json_patch(self, kind: Kind, namespace: str | None, name: str, operations: list[dict[str, Any]]) -> dict:
        return self.request("PATCH", kind.path(namespace, name), body=operations,
                          query=[("fieldManager", FIELD_MANAGER)], content_type="application/json-patch+json")

    def delete(self, kind: Kind, namespace: str | None, name: str, *, resource_version: str | None = None,
               uid: str | None = None) -> bool:
        """False when it was already gone, or (with `resource_version` or `uid`) is no longer the
        object that was judged."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        preconditions = {key: value for key, value in (("resourceVersion", resource_version), ("uid", uid)) if value}
        if preconditions:
            body["preconditions"] = preconditions
        try:
            self.request("DELETE", kind.path(namespace, name), body=body)
        except ApiException as error:
            if error.status == 404 or (error.status == 409 and preconditions):
                return False
            raise
        return True

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self.request(
            "PATCH", FASTAPIAPP.path(namespace, name) + "/status", body={"status": status},
            content_type="application/merge-patch+json",
        )

    def post_event(self, app_body: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        metadata = app_body["metadata"]
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": API_VERSION, "kind": KIND, "name": metadata["name"],
                "namespace": metadata["namespace"], "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": OPERATOR_NAME},
            "reportingComponent": OPERATOR_NAME,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.request("POST", EVENT.path(metadata["namespace"]), body=event)


def retry_after_seconds(header: str | None, attempt: int) -> float:
    """Retry-After if the API server sent one (whole seconds), else 0.5, 1, 2 ... s; capped."""
    try:
        wait = float(header) if header else 0.5 * 2 ** attempt
    except ValueError:
        wait = 0.5 * 2 ** attempt
    return min(max(wait, 0.1), THROTTLED_MAX_WAIT_SECONDS)


def api_message(error: ApiException) -> str:
    try:
        return json.loads(error.body or "{}").get("message") or str(error.reason)
    except ValueError:
        return str(error.reason)


def is_unbuildable_apply(error: ApiException) -> bool:
    """The API server answers 500 when a server-side apply body cannot become a typed object (a
    repeated key in a keyed list, a field the schema lacks): the body's fault, and its message
    names the field, so it is reported like a validation error."""
    return error.status == 500 and api_message(error).startswith("failed to create typed patch object")


def _causes(error: ApiException) -> list[dict[str, Any]]:
    try:
        return (json.loads(error.body or "{}").get("details") or {}).get("causes") or []
    except ValueError:
        return []


def is_replaced(error: ApiException) -> bool:
    """An apply at a uid the object no longer has: it was deleted and made again since it was read."""
    return error.status == 422 and any(cause.get("field") == "metadata.uid" for cause in _causes(error))


def is_namespace_terminating(error: ApiException) -> bool:
    """The namespace is being deleted: it accepts no new objects, and the app goes with it."""
    return error.status == 403 and any(cause.get("reason") == "NamespaceTerminating" for cause in _causes(error))


def load_api_client(connections: int, *, retries: bool = True) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the current kubeconfig context, with a
    pool of `connections` kept open. Without `retries` a failed connection is the caller's to
    retry (the watches reconnect on their own schedule)."""
    from kubernetes import config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = connections
    if not retries:
        configuration.retries = False
    return client.ApiClient(configuration)
