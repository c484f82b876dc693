"""Which Gateway an app's routes attach to, and what the operator reads from it: its listeners,
whether it lets ListenerSets attach, and where its proxy runs.

The Gateway is the platform team's: the operator reads it and never writes it. What the Gateway
does not say (the namespace its proxy pods run in) comes from an annotation the platform team puts
on it; the operator does not guess it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..api import GATEWAY_LISTENERS, FastAPIApp, GatewayRef
from ..errors import InvalidSpec
from ..meta import ANNOTATION_CONTROLLER_NAMESPACE
from ..settings import Settings

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_VERSION = f"{GATEWAY_API_GROUP}/v1"
HTTP, HTTPS = "HTTP", "HTTPS"
DEFAULT_HTTPS_PORT = 443
# spec.allowedListeners.namespaces.from, absent: the Gateway API's default lets no ListenerSet attach.
LISTENER_SETS_FROM_NONE = "None"


@dataclass(frozen=True)
class GatewayListener:
    name: str
    protocol: str
    port: int
    hostname: str | None

    def serves(self, host: str) -> bool:
        """The Gateway API's hostname match: a wildcard stands for one or more leading labels."""
        if not self.hostname:
            return True
        if self.hostname.startswith("*."):
            return host.endswith(self.hostname[1:])
        return host == self.hostname


@dataclass(frozen=True)
class GatewayFacts:
    namespace: str
    name: str
    listeners: tuple[GatewayListener, ...]
    listener_sets_from: str  # All, Same, Selector or None
    proxy_namespace: str | None  # where its proxy pods run, when the Gateway says

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def description(self) -> str:
        return f"Gateway {self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> GatewayFacts:
        metadata, spec = obj["metadata"], obj.get("spec") or {}
        listeners = tuple(
            GatewayListener(entry["name"], entry.get("protocol", ""), entry.get("port", 0), entry.get("hostname"))
            for entry in spec.get("listeners") or [])
        allowed = ((spec.get("allowedListeners") or {}).get("namespaces") or {}).get("from") or LISTENER_SETS_FROM_NONE
        return cls(metadata["namespace"], metadata["name"], listeners, allowed,
                   (metadata.get("annotations") or {}).get(ANNOTATION_CONTROLLER_NAMESPACE) or None)

    def sections(self, protocol: str, hosts: list[str]) -> tuple[str, ...]:
        """The listeners of `protocol` that serve at least one of the hosts."""
        return tuple(listener.name for listener in self.listeners
                     if listener.protocol == protocol and any(listener.serves(host) for host in hosts))

    def https_port(self) -> int:
        return next((listener.port for listener in self.listeners if listener.protocol == HTTPS), DEFAULT_HTTPS_PORT)

    def listener_sets_refusal(self, namespace: str) -> str | None:
        """Why this Gateway refuses a ListenerSet from `namespace`, or None when it may accept it (a
        namespace Selector is the Gateway controller's to judge: its status says)."""
        allowed = self.listener_sets_from
        if allowed == "All" or allowed == "Selector" or (allowed == "Same" and namespace == self.namespace):
            return None
        what = ("only ListenerSets from its own namespace" if allowed == "Same"
                else "no ListenerSets (spec.allowedListeners is not set)" if allowed == LISTENER_SETS_FROM_NONE
                else f"ListenerSets from {allowed}")
        return (f"{self.description} allows {what}, so the app's HTTPS listeners cannot attach from namespace "
                f"{namespace}. The platform team must set spec.allowedListeners.namespaces.from on the Gateway to "
                f"All, or to Selector with a selector that matches namespace {namespace}; or set "
                f"spec.ingress.gateway.listeners to Gateway to use the Gateway's own HTTPS listeners")


Gateways = Mapping[tuple[str, str], GatewayFacts]


def assumed_gateway(namespace: str, name: str) -> GatewayFacts:
    """What `fastapi-operator render` assumes with no cluster to ask: HTTP on 80 and HTTPS on 443 for
    every host, ListenerSets from every namespace, and the proxy in the Gateway's namespace."""
    return GatewayFacts(namespace, name, (GatewayListener("http", HTTP, 80, None),
                                          GatewayListener("https", HTTPS, DEFAULT_HTTPS_PORT, None)),
                        "All", namespace)


def requested_gateway(app: FastAPIApp, settings: Settings) -> tuple[tuple[str, str], GatewayRef] | None:
    """The Gateway the app's routes attach to: the spec's, else (for an app that names no
    IngressClass either) the operator's default; None when the app uses an Ingress."""
    ingress = app.spec.ingress
    if ingress is None:
        return None
    ref = ingress.gateway
    if ref is None and ingress.class_name is None and settings.gateway:
        namespace, name = settings.gateway.split("/", 1)
        ref = GatewayRef(name=name, namespace=namespace)
    if ref is None:
        return None
    return (ref.namespace or app.namespace, ref.name), ref


def gateway_facts(key: tuple[str, str], gateways: Gateways) -> GatewayFacts:
    facts = gateways.get(key)
    if facts is None:
        raise InvalidSpec(f"spec.ingress.gateway: Gateway {key[0]}/{key[1]} does not exist: create it, or name "
                          f"an existing Gateway")
    return facts


def proxy_namespace(facts: GatewayFacts) -> str:
    if facts.proxy_namespace is None:
        raise InvalidSpec(
            f"the operator cannot tell which namespace {facts.description} runs its proxy pods in, so it cannot "
            f"make the NetworkPolicy that admits only that proxy: annotate the Gateway with "
            f"{ANNOTATION_CONTROLLER_NAMESPACE}=<namespace>")
    return facts.proxy_namespace


def uses_own_listeners(ref: GatewayRef) -> bool:
    return ref.listeners != GATEWAY_LISTENERS
