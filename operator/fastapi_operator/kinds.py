"""Every kind the operator touches, and the one registry of the kinds it makes for an app.

A child kind is one entry in CHILDREN: its API, the names it can have for an app (what is found
and deleted when stale), whether the operator watches it to repair drift, whether it moves with
the pods in a rollout (reconcile/rollout.py), whether the app's status reads its status, and the
rights the operator needs on it. The REST layer, the reconcile, the cache, the watch handlers, the
chart's RBAC (`fastapi-operator rbac`, checked by a test) and the tests' request counts all read
it. What each renders is its module in render/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .api import API_VERSION, HOST_CLAIM_KIND, HOST_CLAIM_PLURAL, KIND, PLURAL
from .meta import (
    gateway_tls_name, hsts_middleware_name, legacy_child_names, redirect_https_middleware_name, redirect_ingress_name,
    strip_prefix_middleware_name,
)


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Kinds key the cache's and the reconcile's dicts and sets, a few hundred lookups per new
        # app: hashed once, not at each lookup.
        object.__setattr__(self, "_hash", hash((self.api_version, self.kind, self.plural, self.namespaced)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        root = f"/apis/{self.api_version}" if "/" in self.api_version else f"/api/{self.api_version}"
        if self.namespaced and namespace:
            root += f"/namespaces/{namespace}"
        root += f"/{self.plural}"
        return f"{root}/{name}" if name else root


DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
SERVICE = Kind("v1", "Service", "services")
INGRESS = Kind("networking.k8s.io/v1", "Ingress", "ingresses")
INGRESS_CLASS = Kind("networking.k8s.io/v1", "IngressClass", "ingressclasses", namespaced=False)
NETWORK_POLICY = Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies")
AUTOSCALER = Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
MIDDLEWARE = Kind("traefik.io/v1alpha1", "Middleware", "middlewares")
CLUSTER_ISSUER = Kind("cert-manager.io/v1", "ClusterIssuer", "clusterissuers", namespaced=False)
CERTIFICATE = Kind("cert-manager.io/v1", "Certificate", "certificates")
DISRUPTION_BUDGET = Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
JOB = Kind("batch/v1", "Job", "jobs")
CRON_JOB = Kind("batch/v1", "CronJob", "cronjobs")
HTTP_ROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
LISTENER_SET = Kind("gateway.networking.k8s.io/v1", "ListenerSet", "listenersets")
GATEWAY = Kind("gateway.networking.k8s.io/v1", "Gateway", "gateways")
POD_MONITOR = Kind("monitoring.coreos.com/v1", "PodMonitor", "podmonitors")
FASTAPIAPP = Kind(API_VERSION, KIND, PLURAL)
HOST_CLAIM = Kind(API_VERSION, HOST_CLAIM_KIND, HOST_CLAIM_PLURAL, namespaced=False)
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases")
EVENT = Kind("v1", "Event", "events")

KINDS = {(k.api_version, k.kind): k for k in (
    DEPLOYMENT, SERVICE, INGRESS, NETWORK_POLICY, AUTOSCALER, MIDDLEWARE, CLUSTER_ISSUER,
    CERTIFICATE, FASTAPIAPP, HOST_CLAIM, EVENT, DISRUPTION_BUDGET, JOB, INGRESS_CLASS, LEASE,
    HTTP_ROUTE, LISTENER_SET, GATEWAY, POD_MONITOR, CRON_JOB,
)}

APPLIED = ("get", "list", "watch", "create", "patch", "delete")  # server-side apply is a PATCH that may create


@dataclass(frozen=True)
class ChildKind:
    kind: Kind
    names: Callable[[str, str], tuple[str, ...]]  # (namespace, app) -> every name it can have, old ones too
    rolls_with_pods: bool  # the running pods depend on it: it moves once they are replaced
    verbs: tuple[str, ...] = APPLIED
    why: str = ""  # for the chart's RBAC comment
    # The app's status reads this child's status, so its controller's reports are news to the
    # app; another kind's reports (a PodDisruptionBudget counting healthy pods, an autoscaler's
    # metrics every 15 s) queue nothing.
    status_read: bool = False


def _own(namespace: str, app: str) -> tuple[str, ...]:
    return (app,)


def _redirects(namespace: str, app: str) -> tuple[str, ...]:
    return (app, redirect_ingress_name(app), legacy_child_names(app)["redirect"])


# In the order a reconcile reads them. Every one is watched, by the operator's labels, so a hand
# edit or a deletion is repaired in seconds.
CHILDREN = (
    ChildKind(MIDDLEWARE, lambda ns, app: (strip_prefix_middleware_name(ns, app), redirect_https_middleware_name(ns, app),
                                           hsts_middleware_name(ns, app)), rolls_with_pods=True),
    ChildKind(SERVICE, _own, rolls_with_pods=True),
    ChildKind(DEPLOYMENT, _own, rolls_with_pods=False, status_read=True),
    ChildKind(INGRESS, _redirects, rolls_with_pods=True),
    ChildKind(CERTIFICATE, lambda ns, app: (gateway_tls_name(app), legacy_child_names(app)["gateway_tls"]),
              rolls_with_pods=False, status_read=True,
              why="read for apps behind an Ingress (cert-manager makes those), made for apps that bring their own "
              "Gateway listeners"),
    ChildKind(LISTENER_SET, _own, rolls_with_pods=True, status_read=True),
    ChildKind(HTTP_ROUTE, _redirects, rolls_with_pods=True, status_read=True),
    ChildKind(NETWORK_POLICY, _own, rolls_with_pods=True),
    ChildKind(AUTOSCALER, _own, rolls_with_pods=False),
    ChildKind(DISRUPTION_BUDGET, _own, rolls_with_pods=False),
    ChildKind(POD_MONITOR, _own, rolls_with_pods=False),
    ChildKind(JOB, lambda ns, app: (), rolls_with_pods=False, status_read=True,
              verbs=("get", "list", "watch", "create", "delete"),
              why="migration Jobs: created once under a name that says what they run, never updated"),
    # The schedules' CronJobs, and the workers' Deployments and autoscalers (the kinds above),
    # are named after the spec's parts: found by label (reconcile/workloads.py), not by name.
    ChildKind(CRON_JOB, lambda ns, app: (), rolls_with_pods=False, status_read=True, why="spec.schedules"),
)
ROLLS_WITH_PODS = frozenset(child.kind for child in CHILDREN if child.rolls_with_pods)
WATCHED_CHILD_KINDS = tuple(child.kind for child in CHILDREN)
STATUS_READ = frozenset(child.kind for child in CHILDREN if child.status_read)
# Kinds whose watch event of the operator's own write is news to no app: the children, and the
# shared objects a reconcile makes under its lock (a host's claim, an ACME issuer), which every
# later reconcile reads from the cache the write's answer went into.
OWN_WRITES_NOT_NEWS = frozenset(WATCHED_CHILD_KINDS) | {HOST_CLAIM, CLUSTER_ISSUER}


def possible_children(namespace: str, app: str) -> list[tuple[Kind, str]]:
    """Every namespaced object an app can own by name, desired or not, so stale ones are found.
    (Migration Jobs are found by label: their names say what they run.)"""
    return [(child.kind, name) for child in CHILDREN for name in child.names(namespace, app)]


def namespaced_rules() -> list[dict[str, object]]:
    """The RBAC rules on what the operator makes and reads in each namespace it watches: its
    FastAPIApps, their status, every child kind, and Events."""
    rules: list[dict[str, object]] = [
        {"apiGroups": [FASTAPIAPP.group], "resources": [FASTAPIAPP.plural], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [FASTAPIAPP.group], "resources": [f"{FASTAPIAPP.plural}/status"], "verbs": ["patch"]},
    ]
    for child in CHILDREN:
        rule: dict[str, object] = {"apiGroups": [child.kind.group], "resources": [child.kind.plural],
                                   "verbs": list(child.verbs)}
        if child.why:
            rule["#"] = child.why
        rules.append(rule)
    rules.append({"apiGroups": [EVENT.group], "resources": [EVENT.plural], "verbs": ["create"]})
    return rules
