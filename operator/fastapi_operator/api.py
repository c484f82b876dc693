"""The FastAPIApp API: the one source of its field names, defaults, rules and descriptions.

`crd.py` generates the CustomResourceDefinition from these models, so the API server and
`fastapi-operator render` accept and reject the same manifests. Rules that span fields are
written twice on purpose: once as CEL (enforced by the API server at admission) and once as a
pydantic validator (enforced offline); `tests/unit/test_api.py` runs one corpus through both.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .labels import RESERVED_POD_ANNOTATION_PREFIXES, RESERVED_POD_LABELS

GROUP = "fastapi-operator.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "FastAPIApp"
PLURAL = "fastapiapps"
SINGULAR = "fastapiapp"
SHORT_NAMES = ["fapp"]

# Kubernetes' own grammar for resource quantities (k8s.io/apimachinery/pkg/api/resource).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# An app's name becomes its Service's name and a label value, so it must be a DNS-1035 label.
APP_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
APP_NAME_MAX_LENGTH = 63
APP_NAME_RULE = (
    "metadata.name must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter, "
    "ending with a letter or digit, at most 63 characters (the app's Service and labels take its name)"
)
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# No trailing slash and no regex metacharacters: the prefix is spliced into ingress-nginx's
# regex path and Traefik's StripPrefix, and reaches the app verbatim as --root-path.
PATH_PATTERN = r"^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
IMAGE_PATTERN = r"^\S+$"

HEALTH_PATH_PATTERN = r"^/\S*$"
# An ACME directory over HTTPS: Let's Encrypt, ZeroSSL, step-ca, a private one.
ACME_SERVER_PATTERN = r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/\S*)?$"
BASE64_PATTERN = r"^[A-Za-z0-9+/]+={0,2}$"

# What each pattern means, for error messages a person can act on. The values these patterns
# check are names, paths and addresses, never secrets, so messages may quote them.
PATTERN_HINTS = {
    DNS_LABEL_PATTERN: "must be a DNS label: lowercase letters, digits and '-', at most 63",
    APP_NAME_PATTERN: "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter "
                      "(the app's Service and labels take its name)",
    DNS_SUBDOMAIN_PATTERN: "must be a lowercase DNS name such as hello.example.com (no wildcards)",
    PATH_PATTERN: "must start with '/', must not end with '/', and may use letters, digits and . _ ~ - only",
    EMAIL_PATTERN: "must be an email address such as ops@example.com",
    IMAGE_PATTERN: "must be an image reference without spaces",
    HEALTH_PATH_PATTERN: "must be a path starting with '/'",
    ACME_SERVER_PATTERN: "must be an https:// URL of an ACME directory, such as https://acme.example.com/directory",
    BASE64_PATTERN: "must be base64 of PEM CA certificates (base64 -w0 ca.pem)",
}


def _pem_bundle(value: str | None) -> str | None:
    """Decoded, the bundle must hold at least one PEM certificate: cert-manager would otherwise
    trust nothing and every order would fail on TLS."""
    if value is None:
        return value
    import base64
    import binascii

    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 of PEM CA certificates (base64 -w0 ca.pem)") from None
    if b"-----BEGIN CERTIFICATE-----" not in decoded:
        raise ValueError("decodes to no PEM certificate: it must be base64 of PEM CA certificates (base64 -w0 ca.pem)")
    return value


def _quantity(value: int | str) -> int | str:
    if isinstance(value, str) and re.fullmatch(QUANTITY_PATTERN, value) is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 500m, 256Mi or 2")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_quantity),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string", "pattern": QUANTITY_PATTERN}]}),
]


def _cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    validation = {"rule": rule, "message": message}
    if field_path:
        validation["fieldPath"] = field_path
    return validation


class Model(BaseModel):
    """Camel-case on the wire, snake_case in Python, and unknown fields are an error,
    as `kubectl apply` with strict field validation makes them."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def wire(self) -> dict[str, Any]:
        """The object as it appears in a manifest."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --- Core types the spec embeds (the subset of core/v1 that a FastAPIApp passes through) ---


class KeySelector(Model):
    """Selects a key of a ConfigMap or Secret in the app's namespace."""

    name: str = Field(min_length=1, description="Name of the ConfigMap or Secret.")
    key: str = Field(min_length=1, description="The key to select.")
    optional: bool | None = Field(None, description="Whether the object or key may be missing.")


class ObjectFieldSelector(Model):
    """Selects a field of the pod."""

    field_path: str = Field(min_length=1, description="Path of the field, e.g. metadata.name.")
    api_version: str | None = Field(None, description="Schema version of field_path, default v1.")


class ResourceFieldSelector(Model):
    """Selects a resource of a container: limits.cpu, requests.memory, ..."""

    resource: str = Field(min_length=1, description="The resource to select.")
    container_name: str | None = Field(None, description="Container name, default the app's.")
    divisor: Quantity | None = Field(None, description="Output format of the resource.")


# Lists keyed by name, as the core API keys them: the API server refuses a repeated name at
# admission (server-side apply of the Deployment would otherwise fail on it), and merges by name.
KEYED_BY_NAME = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


def _unique_names(items: list[Any] | None) -> list[Any] | None:
    names = [item.name for item in items or []]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"names must be unique, and {', '.join(repeated)} is repeated")
    return items


class EnvVarSource(Model):
    """Where an environment variable's value comes from."""

    secret_key_ref: KeySelector | None = Field(None, description="A key of a Secret.")
    config_map_key_ref: KeySelector | None = Field(None, description="A key of a ConfigMap.")
    field_ref: ObjectFieldSelector | None = Field(None, description="A field of the pod.")
    resource_field_ref: ResourceFieldSelector | None = Field(
        None, description="A resource of a container."
    )


class EnvVar(Model):
    """An environment variable (core/v1 EnvVar)."""

    name: str = Field(min_length=1, description="Name of the variable.")
    value: str | None = Field(None, description="Literal value.")
    value_from: EnvVarSource | None = Field(None, description="Source of the value.")


class EnvSourceRef(Model):
    """A ConfigMap or Secret whose keys all become environment variables."""

    name: str = Field(min_length=1, description="Name of the ConfigMap or Secret.")
    optional: bool | None = Field(None, description="Whether the object may be missing.")


class EnvFromSource(Model):
    """A source of environment variables (core/v1 EnvFromSource)."""

    prefix: str | None = Field(None, description="Prepended to every variable name.")
    config_map_ref: EnvSourceRef | None = Field(None, description="A ConfigMap.")
    secret_ref: EnvSourceRef | None = Field(None, description="A Secret.")


class ResourceRequirements(Model):
    """Compute resources of the app container (core/v1 ResourceRequirements)."""

    limits: dict[str, Quantity] | None = Field(None, description="Maximum resources allowed.")
    requests: dict[str, Quantity] | None = Field(None, description="Resources reserved.")


class LocalObjectReference(Model):
    """A Secret in the app's namespace, by name."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="Name of the Secret.")


class Toleration(Model):
    """Lets pods schedule onto nodes with a matching taint (core/v1 Toleration)."""

    key: str | None = Field(None, description="Taint key to match; empty with operator Exists matches every taint.")
    operator: Literal["Exists", "Equal"] | None = Field(None, description="Exists or Equal (the default).")
    value: str | None = Field(None, description="Taint value to match, with operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to match; empty matches every effect.")
    toleration_seconds: int | None = Field(
        None, ge=0, description="With effect NoExecute: how long the pod stays bound after the taint appears.")


class LabelSelectorRequirement(Model):
    """A label key, an operator and values."""

    key: str = Field(min_length=1, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] | None = Field(None, description="Values for In and NotIn.")


class LabelSelector(Model):
    """Selects pods by their labels."""

    match_labels: dict[str, str] | None = Field(None, description="Labels the pods must have.")
    match_expressions: list[LabelSelectorRequirement] | None = Field(None, description="Requirements, all must hold.")


class NodeSelectorRequirement(Model):
    """A node label (or field) key, an operator and values."""

    key: str = Field(min_length=1, description="The node label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(
        description="In, NotIn, Exists, DoesNotExist, Gt or Lt.")
    values: list[str] | None = Field(None, description="Values for In, NotIn, Gt and Lt.")


class NodeSelectorTerm(Model):
    """Requirements a node must meet, all of them."""

    match_expressions: list[NodeSelectorRequirement] | None = Field(None, description="On node labels.")
    match_fields: list[NodeSelectorRequirement] | None = Field(None, description="On node fields.")


class NodeSelector(Model):
    """Terms of which a node must meet at least one."""

    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1, description="The terms, ORed.")


class PreferredSchedulingTerm(Model):
    """A node preference with a weight."""

    weight: int = Field(ge=1, le=100, description="Weight, 1 to 100.")
    preference: NodeSelectorTerm = Field(description="The nodes preferred.")


class NodeAffinity(Model):
    """Which nodes the pods may or prefer to run on."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        None, description="Nodes the pods must run on.")
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = Field(
        None, description="Nodes the pods prefer.")


class PodAffinityTerm(Model):
    """Pods to be near (or away from), within a topology domain."""

    label_selector: LabelSelector | None = Field(None, description="The other pods.")
    namespaces: list[str] | None = Field(None, description="Their namespaces; default the app's.")
    namespace_selector: LabelSelector | None = Field(None, description="Their namespaces, by label.")
    topology_key: str = Field(min_length=1, description="Node label of the domain, e.g. kubernetes.io/hostname.")
    match_label_keys: list[str] | None = Field(None, description="Pod label keys whose values must match this pod's.")
    mismatch_label_keys: list[str] | None = Field(None, description="Pod label keys whose values must differ.")


class WeightedPodAffinityTerm(Model):
    """A pod affinity term with a weight."""

    weight: int = Field(ge=1, le=100, description="Weight, 1 to 100.")
    pod_affinity_term: PodAffinityTerm = Field(description="The term.")


class PodAffinity(Model):
    """Pods this app's pods must or prefer to be near (or, as anti-affinity, away from)."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        None, description="Terms that must hold.")
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = Field(
        None, description="Terms preferred.")


class Affinity(Model):
    """Scheduling constraints (core/v1 Affinity)."""

    node_affinity: NodeAffinity | None = Field(None, description="Constraints on nodes.")
    pod_affinity: PodAffinity | None = Field(None, description="Pods to be near.")
    pod_anti_affinity: PodAffinity | None = Field(None, description="Pods to stay away from.")


# One server process per container: a request of 100m CPU, and memory requested = limited,
# so a single uvicorn process is never OOM-killed by a neighbour's burst.
DEFAULT_RESOURCES = ResourceRequirements(
    requests={"cpu": "100m", "memory": "256Mi"}, limits={"memory": "256Mi"}
)


# --- The FastAPIApp spec ---


EVERY_POD = "EveryPod"
ONCE_PER_ROLLOUT = "OncePerRollout"


class PreStartStep(Model):
    """A step run before the app starts: in every pod as an init container, or once per rollout
    as a Job (database migrations)."""

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN,
        description="Name of the step, a DNS label unique among the steps.",
    )
    command: list[str] = Field(
        min_length=1, description="Exec-form command, e.g. [alembic, upgrade, head]."
    )
    image: str | None = Field(
        None, pattern=IMAGE_PATTERN, description="Image of the step; default spec.image."
    )
    env: Annotated[list[EnvVar] | None, AfterValidator(_unique_names)] = Field(
        None, description="Environment of the step; when absent the app's spec.env is used.",
        json_schema_extra=KEYED_BY_NAME,
    )
    env_from: list[EnvFromSource] | None = Field(
        None, description="Environment sources of the step; when absent the app's spec.envFrom."
    )
    run: Literal["EveryPod", "OncePerRollout"] = Field(
        EVERY_POD,
        description="EveryPod: an init container in every pod (waiting for a dependency, warming a "
        "cache). OncePerRollout: one Job before the new version starts (database migrations); the "
        "Deployment keeps its current pods until the Job succeeds, and a failed Job holds the rollout. "
        "The Job runs again when its image, command or environment changes, after any earlier one "
        "still running has finished: two never run at once.",
    )


class HstsSpec(Model):
    """The Strict-Transport-Security header on every HTTPS response."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!self.preload || (self.includeSubDomains && self.maxAgeSeconds >= 31536000)",
                    "preload needs includeSubDomains and a maxAgeSeconds of at least 31536000 (one year), "
                    "as the browsers' preload list requires",
                    ".preload",
                )
            ]
        }
    )

    max_age_seconds: int = Field(
        31536000, ge=0, le=63072000, description="How long browsers remember to use HTTPS only; default one year.")
    include_sub_domains: bool = Field(False, description="The rule also covers every subdomain of the hosts.")
    preload: bool = Field(False, description="Ask to be on the browsers' preload list.")

    @model_validator(mode="after")
    def _preload_requirements(self) -> HstsSpec:
        if self.preload and not (self.include_sub_domains and self.max_age_seconds >= 31536000):
            raise ValueError("preload needs includeSubDomains and a maxAgeSeconds of at least 31536000 "
                             "(one year), as the browsers' preload list requires")
        return self

    def header(self) -> str:
        """The header's value, the same for every ingress flavour."""
        parts = [f"max-age={self.max_age_seconds}"]
        if self.include_sub_domains:
            parts.append("includeSubDomains")
        if self.preload:
            parts.append("preload")
        return "; ".join(parts)


GATEWAY_LISTENER_SET = "ListenerSet"
GATEWAY_LISTENERS = "Gateway"


class GatewayRef(Model):
    """Route the app through the Gateway API: HTTPRoutes attached to this Gateway, which the
    platform team owns and the operator only reads."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="The Gateway's name.")
    namespace: str | None = Field(
        None, min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN,
        description="The Gateway's namespace; default the app's.")
    listeners: Literal["ListenerSet", "Gateway"] = Field(
        GATEWAY_LISTENER_SET,
        description="Where HTTPS is terminated. ListenerSet: the app brings its own listener for each host, "
        "with its certificate from cert-manager, in a ListenerSet on the Gateway (the Gateway must allow "
        "ListenerSets from the app's namespace). Gateway: the Gateway's own HTTPS listeners serve the hosts "
        "with the platform's certificate; the operator only adds routes.",
    )


class IngressSpec(Model):
    """Expose the app through an Ingress, or a Gateway, with HTTPS. Absent: no Ingress, route,
    ClusterIssuer or NetworkPolicy is made."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.className) && has(self.gateway))",
                    "className and gateway exclude each other: className routes through an Ingress, "
                    "gateway through the Gateway API",
                )
            ]
        }
    )

    hosts: list[Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]] = Field(
        min_length=1, description="DNS names the app answers on (DNS-1123, at least one)."
    )
    path: str = Field(
        "/", pattern=PATH_PATTERN,
        description=(
            "Path prefix, starting with '/' and without a trailing slash. The proxy strips it "
            "and the app receives it as --root-path, so /docs and openapi.json work under it."
        ),
    )
    class_name: str | None = Field(
        None, min_length=1,
        description="IngressClass; default from the operator's settings, else the cluster's default class. "
        "Excludes gateway.",
    )
    gateway: GatewayRef | None = Field(
        None, description=GatewayRef.__doc__ + " Default from the operator's settings (gateway). Excludes className.")
    hsts: HstsSpec | None = Field(
        None, description="Send Strict-Transport-Security (HSTS) on HTTPS responses; absent: not sent "
        "by the app's Ingress. Needs tls.enabled.",
    )


    @model_validator(mode="after")
    def _class_or_gateway(self) -> IngressSpec:
        if self.class_name is not None and self.gateway is not None:
            raise ValueError("className and gateway exclude each other: className routes through an Ingress, "
                             "gateway through the Gateway API")
        return self


class AcmeSpec(Model):
    """Get certificates from an ACME server (Let's Encrypt by default) through a ClusterIssuer
    the operator shares between the apps that ask for the same server, email and ingress class."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.environment) && has(self.server))",
                    "environment and server exclude each other: environment names a Let's Encrypt "
                    "directory, server any other",
                )
            ]
        }
    )

    email: str | None = Field(
        None, pattern=EMAIL_PATTERN,
        description="Account email for expiry notices; default from the operator's settings.",
    )
    environment: Literal["production", "staging"] | None = Field(
        None, description="production or staging Let's Encrypt; default from the operator's "
        "settings (production). Excludes server.",
    )
    server: str | None = Field(
        None, max_length=2048, pattern=ACME_SERVER_PATTERN,
        description="URL of another ACME directory (ZeroSSL, step-ca, a private ACME server); "
        "default from the operator's settings, else Let's Encrypt. Excludes environment.",
    )
    ca_bundle: str | None = Field(
        None, max_length=65536, pattern=BASE64_PATTERN,
        description="Base64 of the PEM CA certificates to trust for the ACME server's own TLS, "
        "when they are not public CAs (step-ca, a private server); default from the operator's "
        "settings.",
    )

    @model_validator(mode="after")
    def _one_directory(self) -> AcmeSpec:
        if self.environment is not None and self.server is not None:
            raise ValueError("environment and server exclude each other: environment names a Let's Encrypt "
                             "directory, server any other")
        return self

    _ca_bundle_holds_pem = field_validator("ca_bundle")(_pem_bundle)


class TlsSpec(Model):
    """HTTPS at the Ingress, with a certificate from cert-manager."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.acme) && has(self.clusterIssuer))",
                    "acme and clusterIssuer exclude each other: set one of them",
                )
            ]
        }
    )

    enabled: bool = Field(True, description="Serve HTTPS and redirect HTTP to it.")
    acme: AcmeSpec | None = Field(
        None, description="Let's Encrypt through a ClusterIssuer the operator manages."
    )
    cluster_issuer: str | None = Field(
        None, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of an existing ClusterIssuer to use instead; never edited.",
    )

    @model_validator(mode="after")
    def _one_issuer(self) -> TlsSpec:
        if self.acme is not None and self.cluster_issuer is not None:
            raise ValueError("acme and clusterIssuer exclude each other: set one of them")
        return self


class AutoscalingSpec(Model):
    """A HorizontalPodAutoscaler on CPU; spec.replicas is then left to it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.minReplicas <= self.maxReplicas",
                    "minReplicas must not exceed maxReplicas",
                    ".minReplicas",
                )
            ]
        }
    )

    min_replicas: int = Field(1, ge=1, description="Fewest replicas.")
    max_replicas: int = Field(ge=1, description="Most replicas.")
    target_cpu_utilization_percentage: int = Field(
        80, ge=1, le=100, alias="targetCPUUtilizationPercentage",
        description="Average CPU use, in percent of the request, to aim for.",
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class MetricsSpec(Model):
    """Prometheus metrics of the app (prometheus-fastapi-instrumentator, prometheus_client): a
    PodMonitor for the Prometheus Operator that scrapes every pod, and, with an ingress, a rule in the
    NetworkPolicy that lets the operator's monitoring_namespace reach that port."""

    path: str = Field("/metrics", pattern=HEALTH_PATH_PATTERN, description="HTTP path of the metrics.")
    port: int | None = Field(
        None, ge=1, le=65535,
        description="Container port serving the metrics; default the app's own port. A port of its own keeps "
        "Prometheus off the port that trusts forwarded headers, and /metrics off the Ingress.")
    interval: str = Field("30s", pattern=r"^[1-9][0-9]*(s|m|h)$", description="How often Prometheus scrapes, "
                          "e.g. 15s or 1m.")


class ShutdownSpec(Model):
    """How a pod stops without failing a request: it keeps serving for drainSeconds while the
    ingress controller stops sending it traffic, then gets SIGTERM and has timeoutSeconds to finish
    the requests in flight. terminationGracePeriodSeconds is their sum."""

    drain_seconds: int = Field(
        5, ge=0, le=300,
        description="Seconds a stopping pod keeps serving before SIGTERM (a preStop pause): time for "
        "the ingress controller to take it out of rotation.",
    )
    timeout_seconds: int = Field(
        25, ge=1, le=3600,
        description="Seconds after SIGTERM for requests in flight to finish before the pod is killed. "
        "A custom command also gets it as UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN.",
    )

    @property
    def grace_period_seconds(self) -> int:
        return self.drain_seconds + self.timeout_seconds


def _pod_labels(labels: dict[str, str]) -> dict[str, str]:
    reserved = sorted(set(labels) & set(RESERVED_POD_LABELS))
    if reserved:
        raise ValueError(f"{', '.join(reserved)} {'is' if len(reserved) == 1 else 'are'} set by the operator "
                         "(they select the app's pods): use another label key")
    return labels


def _pod_annotations(annotations: dict[str, str]) -> dict[str, str]:
    reserved = sorted(key for key in annotations if key.startswith(RESERVED_POD_ANNOTATION_PREFIXES))
    if reserved:
        raise ValueError(f"{', '.join(reserved)}: pod security annotations are not allowed, the operator "
                         "sets the pods' security context")
    return annotations


LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
PodLabels = Annotated[
    dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]],
    AfterValidator(_pod_labels),
]
PodAnnotations = Annotated[dict[str, str], AfterValidator(_pod_annotations)]


# --- Beyond the web process: volumes, sidecars, workers and schedules ---

# Five fields, or one of the macros the CronJob controller knows; the API server checks the values.
CRON_PATTERN = (r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
                r"([0-9*/,?A-Za-z-]+\s+){4}[0-9*/,?A-Za-z-]+)$")
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
MOUNT_PATH_PATTERN = r"^/\S*$"
PATTERN_HINTS[CRON_PATTERN] = ("must be a cron schedule: five fields (minute hour day-of-month month day-of-week), "
                               "such as '0 3 * * *', or @hourly, @daily, @weekly, @monthly, @yearly")
PATTERN_HINTS[TIME_ZONE_PATTERN] = "must be a time zone name of the tz database, such as Europe/Paris or Etc/UTC"
# What the web container, the app's own init containers and the migration Job's are called: a
# sidecar of that name would be a second container of one name in the pod.
APP_CONTAINER_NAME = "app"
MOUNTS_DECLARED = "every volumeMounts[].name must be the name of one of spec.volumes"
MAX_VOLUMES = 32
MAX_PARTS = 16
MAX_STEPS = 32  # bounds the cost of the sidecar-name rule, which the API server estimates ahead


class VolumeMount(Model):
    """Where a container sees one of spec.volumes."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="A name of spec.volumes.")
    mount_path: str = Field(max_length=1024, pattern=MOUNT_PATH_PATTERN, description="Absolute path in the container.")
    read_only: bool | None = Field(None, description="Mounted read-only.")
    sub_path: str | None = Field(None, min_length=1, max_length=1024, pattern=r"^[^/]\S*$",
                                 description="A path inside the volume to mount instead of its root.")


VolumeMounts = Annotated[list[VolumeMount], Field(max_length=MAX_VOLUMES)]


class EmptyDirVolume(Model):
    """Scratch space that lives as long as the pod (a cache, files shared with a sidecar)."""

    size_limit: Quantity = Field(description="The most it may hold, e.g. 1Gi; past it the pod is evicted.")
    medium: Literal["Memory"] | None = Field(None, description="Memory: a tmpfs, counted against the memory limit.")


class ConfigMapVolume(Model):
    """A ConfigMap's keys as files."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="The ConfigMap.")
    optional: bool | None = Field(None, description="Whether it may be missing.")


class SecretVolume(Model):
    """A Secret's keys as files."""

    secret_name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="The Secret.")
    optional: bool | None = Field(None, description="Whether it may be missing.")


class ClaimVolume(Model):
    """An existing PersistentVolumeClaim of the app's namespace."""

    claim_name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="The claim.")
    read_only: bool | None = Field(None, description="Mounted read-only.")


class EphemeralVolume(Model):
    """A PersistentVolumeClaim made for each pod and deleted with it."""

    storage: Quantity = Field(description="Size requested, e.g. 10Gi.")
    storage_class_name: str | None = Field(None, min_length=1, max_length=253, description="Default: the cluster's.")
    access_modes: list[Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany", "ReadWriteMany"]] = Field(
        default_factory=lambda: ["ReadWriteOnce"], min_length=1, max_length=4, description="Default ReadWriteOnce.")


VOLUME_SOURCES = ("empty_dir", "config_map", "secret", "persistent_volume_claim", "ephemeral")
ONE_VOLUME_SOURCE = "set exactly one of emptyDir, configMap, secret, persistentVolumeClaim, ephemeral"


class Volume(Model):
    """A volume the app's pods may mount: each pod gets the volumes its containers mount."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_cel(
        "[has(self.emptyDir), has(self.configMap), has(self.secret), has(self.persistentVolumeClaim), "
        "has(self.ephemeral)].filter(x, x).size() == 1", ONE_VOLUME_SOURCE)]})

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN, description="Name the mounts use.")
    empty_dir: EmptyDirVolume | None = Field(None, description=EmptyDirVolume.__doc__)
    config_map: ConfigMapVolume | None = Field(None, description=ConfigMapVolume.__doc__)
    secret: SecretVolume | None = Field(None, description=SecretVolume.__doc__)
    persistent_volume_claim: ClaimVolume | None = Field(None, description=ClaimVolume.__doc__)
    ephemeral: EphemeralVolume | None = Field(None, description=EphemeralVolume.__doc__)

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        if sum(getattr(self, source) is not None for source in VOLUME_SOURCES) != 1:
            raise ValueError(ONE_VOLUME_SOURCE)
        return self


class ProbeSpec(Model):
    """A check of a worker or sidecar: a command, an HTTP GET or a TCP connection (set one)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        _cel("[has(self.command), has(self.httpPath), has(self.tcpPort)].filter(x, x).size() == 1",
             "set exactly one of command, httpPath, tcpPort"),
        _cel("has(self.httpPath) == has(self.httpPort)", "httpPath and httpPort go together", ".httpPort")]})

    command: list[str] | None = Field(None, min_length=1, description="Exec-form command; exit 0 is healthy.")
    http_path: str | None = Field(None, pattern=HEALTH_PATH_PATTERN, description="HTTP path, on httpPort.")
    http_port: int | None = Field(None, ge=1, le=65535, description="Port of httpPath (set both).")
    tcp_port: int | None = Field(None, ge=1, le=65535, description="A port that must accept connections.")
    period_seconds: int = Field(10, ge=1, le=3600, description="How often it runs.")
    failure_threshold: int = Field(3, ge=1, le=100, description="Failures in a row that count.")

    @model_validator(mode="after")
    def _one_check(self) -> ProbeSpec:
        if sum(value is not None for value in (self.command, self.http_path, self.tcp_port)) != 1:
            raise ValueError("set exactly one of command, httpPath, tcpPort")
        if (self.http_path is None) != (self.http_port is None):
            raise ValueError("httpPath and httpPort go together")
        return self


class ContainerPort(Model):
    name: str = Field(min_length=1, max_length=15, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                      description="Port name, at most 15 characters.")
    container_port: int = Field(ge=1, le=65535, description="Port number.")


class Sidecar(Model):
    """A container beside the app in each of its pods (the web pods, each worker's, each
    schedule's and the migration Job's): a Kubernetes native sidecar, started before the app's
    containers and stopped after them, under the same security settings."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN,
                      description="Container name, unique among the sidecars and preStart steps, not 'app'.")
    image: str = Field(min_length=1, pattern=IMAGE_PATTERN, description="Container image.")
    command: list[str] = Field(default_factory=list, description="Exec-form command; default the image's.")
    ports: Annotated[list[ContainerPort], AfterValidator(_unique_names)] = Field(
        default_factory=list, max_length=16, description="Ports it listens on (reached from the pod itself).",
        json_schema_extra=KEYED_BY_NAME)
    resources: ResourceRequirements = Field(
        ResourceRequirements(requests={"cpu": "10m", "memory": "64Mi"}, limits={"memory": "64Mi"}),
        description="Default requests cpu 10m, memory 64Mi and limits memory 64Mi.")
    env: Annotated[list[EnvVar], AfterValidator(_unique_names)] = Field(
        default_factory=list, description="Its environment (not the app's).", json_schema_extra=KEYED_BY_NAME)
    probe: ProbeSpec | None = Field(None, description="Readiness: the app's containers start once it passes.")
    volume_mounts: VolumeMounts = Field(default_factory=list, description="Volumes it mounts.")


class Worker(Model):
    """A background worker (Celery, arq, RQ, Dramatiq): a Deployment with no Service, ingress or
    forwarded-header trust, on the app's image, environment and pod settings unless it sets its
    own, rolled with the web pods once the migration succeeded."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_cel(
        "!has(self.autoscaling) || !has(self.replicas)", "set replicas or autoscaling, not both", ".replicas")]})

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN,
                      description="Name, unique among the workers: the Deployment is <app>.<name>.")
    command: list[str] = Field(min_length=1, description="Exec-form command, e.g. [arq, app.worker.Settings].")
    image: str | None = Field(None, pattern=IMAGE_PATTERN, description="Default spec.image.")
    replicas: int | None = Field(None, ge=0, description="Number of pods, default 1; excludes autoscaling.")
    autoscaling: AutoscalingSpec | None = Field(None, description=AutoscalingSpec.__doc__)
    resources: ResourceRequirements | None = Field(None, description="Default spec.resources.")
    env: Annotated[list[EnvVar] | None, AfterValidator(_unique_names)] = Field(
        None, description="Its environment; when absent the app's spec.env.", json_schema_extra=KEYED_BY_NAME)
    env_from: list[EnvFromSource] | None = Field(None, description="When absent the app's spec.envFrom.")
    probe: ProbeSpec | None = Field(None, description="Liveness check; none by default (a worker has no port).")
    termination_grace_period_seconds: int = Field(
        60, ge=1, le=86400, description="Seconds a stopping worker has after SIGTERM to finish its task.")
    volume_mounts: VolumeMounts = Field(default_factory=list, description="Volumes it mounts.")

    @model_validator(mode="after")
    def _replicas_or_autoscaling(self) -> Worker:
        if self.autoscaling is not None and self.replicas is not None:
            raise ValueError("set replicas or autoscaling, not both")
        return self


class Schedule(Model):
    """A scheduled task: a CronJob on the app's image and environment. It never starts a run while
    a migration of the app runs (suspended until it ends), and runs the new version from the
    moment the migration succeeded."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN,
                      description="Name, unique among the schedules: the CronJob is <app>.<name>, at most 52 characters.")
    schedule: str = Field(pattern=CRON_PATTERN, description="Cron schedule, e.g. '0 3 * * *' or @hourly.")
    time_zone: str | None = Field(None, pattern=TIME_ZONE_PATTERN, description="Default the controller's (UTC).")
    command: list[str] = Field(min_length=1, description="Exec-form command, e.g. [python, -m, app.cleanup].")
    image: str | None = Field(None, pattern=IMAGE_PATTERN, description="Default spec.image.")
    resources: ResourceRequirements | None = Field(None, description="Default spec.resources.")
    env: Annotated[list[EnvVar] | None, AfterValidator(_unique_names)] = Field(
        None, description="Its environment; when absent the app's spec.env.", json_schema_extra=KEYED_BY_NAME)
    env_from: list[EnvFromSource] | None = Field(None, description="When absent the app's spec.envFrom.")
    concurrency_policy: Literal["Forbid", "Allow", "Replace"] = Field(
        "Forbid", description="A run due while the last one runs: Forbid skips it, Replace stops the last one, "
        "Allow runs both.")
    deadline_seconds: int | None = Field(None, ge=1, le=604800, description="Seconds a run may take before it fails.")
    starting_deadline_seconds: int | None = Field(
        None, ge=1, description="Seconds after its time a missed run may still start (after a migration, say); "
        "default: it starts however late.")
    successful_jobs_history_limit: int = Field(3, ge=0, le=100, description="Finished runs kept.")
    failed_jobs_history_limit: int = Field(1, ge=0, le=100, description="Failed runs kept.")
    volume_mounts: VolumeMounts = Field(default_factory=list, description="Volumes it mounts.")


def parts_problem(volumes: list[Volume], web_mounts: list[VolumeMount], sidecars: list[Sidecar],
                  workers: list[Worker], schedules: list[Schedule], container_names: set[str]) -> str | None:
    """What PARTS_RULES refuse at admission, for the offline validation."""
    clashing = sorted(sidecar.name for sidecar in sidecars if sidecar.name in container_names)
    if clashing:
        return f"sidecars: a sidecar's name must differ from 'app' and from every preStart step's: {clashing}"
    declared = {volume.name for volume in volumes}
    parts = [web_mounts] + [part.volume_mounts for part in (*sidecars, *workers, *schedules)]
    undeclared = sorted({mount.name for mounts in parts for mount in mounts} - declared)
    return f"volumes: {MOUNTS_DECLARED}; not declared: {undeclared}" if undeclared else None


PARTS_RULES = [
    _cel("!has(self.sidecars) || self.sidecars.all(s, s.name != 'app' && (!has(self.preStart) || "
         "!self.preStart.exists(p, p.name == s.name)))",
         "a sidecar's name must differ from 'app' and from every preStart step's", ".sidecars"),
    _cel("!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && "
         "self.volumes.exists(v, v.name == m.name))", MOUNTS_DECLARED, ".volumeMounts"),
    *(_cel(f"!has(self.{parts}) || self.{parts}.all(p, !has(p.volumeMounts) || p.volumeMounts.all(m, "
           "has(self.volumes) && self.volumes.exists(v, v.name == m.name)))", MOUNTS_DECLARED, f".{parts}")
      for parts in ("sidecars", "workers", "schedules")),
]


GATEWAY_CERTIFICATE_RULE = (
    "tls.acme and tls.clusterIssuer need ingress.gateway.listeners: ListenerSet; with listeners: Gateway "
    "the Gateway's own HTTPS listeners hold the certificate")


class FastAPIAppSpec(Model):
    """A FastAPI app, deployed the way FastAPI's deployment guide says."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.ingress) || !has(self.ingress.hsts) || self.tls.enabled",
                    "ingress.hsts needs tls.enabled: browsers ignore HSTS sent over plain HTTP",
                    ".ingress.hsts",
                ),
                _cel(
                    "!has(self.ingress) || !has(self.ingress.gateway) || !has(self.ingress.gateway.listeners) "
                    "|| self.ingress.gateway.listeners != 'Gateway' || (!has(self.tls.acme) && "
                    "!has(self.tls.clusterIssuer))",
                    GATEWAY_CERTIFICATE_RULE,
                    ".tls",
                ),
                *PARTS_RULES,
            ]
        }
    )

    image: str = Field(min_length=1, pattern=IMAGE_PATTERN, description="Container image.")
    app: str = Field(
        "app/main.py", min_length=1,
        description=(
            "What `fastapi run` serves: a file path (app/main.py), or an import string with "
            "':' (app.main:app), passed as --entrypoint."
        ),
    )
    command: list[str] = Field(
        default_factory=list,
        description=(
            "Exec-form command for images without fastapi-cli. Proxy and root-path settings "
            "then reach the server through its environment (UVICORN_* and FORWARDED_ALLOW_IPS)."
        ),
    )
    port: int = Field(8000, ge=1, le=65535, description="Container port the app listens on.")
    replicas: int = Field(
        1, ge=0, description="Number of pods; left to the autoscaler when autoscaling is set."
    )
    resources: ResourceRequirements = Field(
        DEFAULT_RESOURCES,
        description="Requests and limits of the app container; default requests cpu 100m, "
        "memory 256Mi and limits memory 256Mi.",
    )
    env: Annotated[list[EnvVar], AfterValidator(_unique_names)] = Field(
        default_factory=list, description="Environment variables.", json_schema_extra=KEYED_BY_NAME)
    env_from: list[EnvFromSource] = Field(
        default_factory=list, description="Sources of environment variables."
    )
    pre_start: list[PreStartStep] = Field(
        default_factory=list,
        description="Steps run in order before the app starts, as init containers.", max_length=MAX_STEPS,
        json_schema_extra=KEYED_BY_NAME,
    )
    keep_alive_seconds: int | None = Field(
        None, ge=1, le=86400,
        description="Seconds the server keeps an idle connection open (uvicorn's timeout-keep-alive). Default: "
        "a few seconds above the upstream idle timeout of the proxy the app is routed through (Traefik 90 s, "
        "ingress-nginx 60 s, any other 3600 s), so the proxy never sends a request on a connection the app has "
        "just closed; without an ingress, uvicorn's own 5 s.",
    )
    migration_deadline_seconds: int = Field(
        1800, ge=10, le=86400,
        description="Seconds the migration Job (the OncePerRollout steps) may take, waiting for its pod "
        "included, before it fails and the rollout stops at the current version with a reason that says "
        "what to do.",
    )
    health_path: str | None = Field(
        None, pattern=HEALTH_PATH_PATTERN,
        description="HTTP path for startup, readiness and liveness probes; TCP probes on the "
        "port when absent.",
    )
    ingress: IngressSpec | None = Field(None, description=IngressSpec.__doc__)
    tls: TlsSpec = Field(TlsSpec(), description="HTTPS at the Ingress; used when ingress is set.")
    autoscaling: AutoscalingSpec | None = Field(None, description=AutoscalingSpec.__doc__)
    metrics: MetricsSpec | None = Field(None, description=MetricsSpec.__doc__)
    shutdown: ShutdownSpec = Field(ShutdownSpec(), description=ShutdownSpec.__doc__)
    volumes: Annotated[list[Volume], AfterValidator(_unique_names)] = Field(
        default_factory=list, max_length=MAX_VOLUMES, description="Volumes the containers may mount.",
        json_schema_extra=KEYED_BY_NAME)
    volume_mounts: VolumeMounts = Field(default_factory=list, description="Volumes the app container mounts.")
    sidecars: Annotated[list[Sidecar], AfterValidator(_unique_names)] = Field(
        default_factory=list, max_length=MAX_PARTS, description=Sidecar.__doc__, json_schema_extra=KEYED_BY_NAME)
    workers: Annotated[list[Worker], AfterValidator(_unique_names)] = Field(
        default_factory=list, max_length=MAX_PARTS, description=Worker.__doc__, json_schema_extra=KEYED_BY_NAME)
    schedules: Annotated[list[Schedule], AfterValidator(_unique_names)] = Field(
        default_factory=list, max_length=MAX_PARTS, description=Schedule.__doc__, json_schema_extra=KEYED_BY_NAME)
    image_pull_secrets: Annotated[list[LocalObjectReference], AfterValidator(_unique_names)] = Field(
        default_factory=list, description="Secrets with credentials for a private registry, for the app's "
        "and the steps' images.", json_schema_extra=KEYED_BY_NAME,
    )
    service_account_name: str | None = Field(
        None, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN,
        description="ServiceAccount the pods run as (workload identity). Its own "
        "automountServiceAccountToken then decides whether a token is mounted; without it no token is.",
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the pods' nodes must have.",
        json_schema_extra={"maxProperties": 64},
    )
    tolerations: list[Toleration] = Field(default_factory=list, description="Taints the pods tolerate.")
    affinity: Affinity | None = Field(None, description="Node and pod affinity of the pods.")
    pod_labels: PodLabels = Field(
        default_factory=dict, description="Extra labels on the pods; the app.kubernetes.io/instance, name and "
        "managed-by labels and fastapi-operator.dev/worker are the operator's.",
        json_schema_extra={"maxProperties": 64, "x-kubernetes-validations": [_cel(
            "!('app.kubernetes.io/instance' in self) && !('app.kubernetes.io/name' in self) && "
            "!('app.kubernetes.io/managed-by' in self) && !('fastapi-operator.dev/worker' in self)",
            "app.kubernetes.io/instance, name and managed-by and fastapi-operator.dev/worker are set by the operator "
            "(they select the app's pods): use another label key")]},
    )
    pod_annotations: PodAnnotations = Field(
        default_factory=dict, description="Extra annotations on the pods; pod security annotations "
        "(AppArmor, seccomp) are not allowed.",
        json_schema_extra={"maxProperties": 64, "x-kubernetes-validations": [_cel(
            "self.all(k, !k.startsWith('container.apparmor.security.beta.kubernetes.io/') && "
            "!k.startsWith('seccomp.security.alpha.kubernetes.io/'))",
            "pod security annotations (AppArmor, seccomp) are not allowed: the operator sets the pods' "
            "security context")]},
    )

    @model_validator(mode="after")
    def _gateway_listeners_bring_no_certificate(self) -> FastAPIAppSpec:
        gateway = self.ingress.gateway if self.ingress is not None else None
        if gateway is not None and gateway.listeners == GATEWAY_LISTENERS and (
                self.tls.acme is not None or self.tls.cluster_issuer is not None):
            raise ValueError(GATEWAY_CERTIFICATE_RULE)
        return self

    @model_validator(mode="after")
    def _hsts_needs_tls(self) -> FastAPIAppSpec:
        if self.ingress is not None and self.ingress.hsts is not None and not self.tls.enabled:
            raise ValueError("ingress.hsts needs tls.enabled: browsers ignore HSTS sent over plain HTTP")
        return self

    @model_validator(mode="after")
    def _parts_fit(self) -> FastAPIAppSpec:
        problem = parts_problem(self.volumes, self.volume_mounts, self.sidecars, self.workers, self.schedules,
                                {APP_CONTAINER_NAME} | {step.name for step in self.pre_start})
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _unique_step_names(self) -> FastAPIAppSpec:
        names = [step.name for step in self.pre_start]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"preStart step names must be unique; repeated: {duplicates}")
        return self


# --- Status ---


class Condition(Model):
    """A condition, per the Kubernetes API conventions."""

    type: str = Field(description="Ready, Available, CertificateReady or Reconciled.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason for the last transition.")
    message: str = Field("", description="What happened, and what to change if anything.")
    observed_generation: int | None = Field(None, description="Generation the condition is for.")
    last_transition_time: str = Field(description="When status last changed.")


class WorkerStatus(Model):
    name: str = Field(description="The worker.")
    replicas: int = Field(description="Its pods.")
    ready_replicas: int = Field(description="Its pods ready.")


class ScheduleStatus(Model):
    name: str = Field(description="The schedule.")
    suspended: bool = Field(description="No run starts: a migration runs, or it was suspended by hand.")
    active: int = Field(description="Runs in progress.")
    last_schedule_time: str | None = Field(None, description="When a run last started.")
    last_successful_time: str | None = Field(None, description="When a run last succeeded.")


class FastAPIAppStatus(Model):
    """What the operator observed."""

    observed_generation: int | None = Field(None, description="Generation last reconciled.")
    template_generation: int | None = Field(
        None, description="Generation whose pods the Deployment's template says: a change of its pods at a later "
        "reconcile of the same generation comes from the operator, and is paced.")
    url: str | None = Field(None, description="Where the app is served.")
    replicas: int | None = Field(None, description="Pods desired by the Deployment.")
    ready_replicas: int | None = Field(None, description="Pods ready.")
    replicas_summary: str | None = Field(None, description="ready/desired, for kubectl get.")
    selector: str | None = Field(None, description="Label selector of the pods (scale).")
    parts_summary: str | None = Field(None, description="The web pods, each worker and each schedule, for kubectl get.")
    workers: list[WorkerStatus] | None = Field(None, description="Each worker's pods.")
    schedules: list[ScheduleStatus] | None = Field(None, description="Each schedule's runs.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Available, CertificateReady, Reconciled.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


class ObjectMeta(BaseModel):
    """The metadata `render` needs; everything else is passed through untouched."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=APP_NAME_MAX_LENGTH, pattern=APP_NAME_PATTERN)
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None


class FastAPIApp(BaseModel):
    """A whole FastAPIApp manifest, as `kubectl apply` or the API server sees it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    api_version: Literal["fastapi-operator.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["FastAPIApp"]
    metadata: ObjectMeta
    spec: FastAPIAppSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace


def describe_validation_error(error: Any) -> str:
    """One line per problem, each naming the field as a user writes it (spec.ingress.path)."""
    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        pattern = (problem.get("ctx") or {}).get("pattern")
        if problem["type"] == "string_pattern_mismatch" and pattern in PATTERN_HINTS:
            message = f"{problem['input']!r} {PATTERN_HINTS[pattern]}"
        lines.append(f"{location}: {message}")
    return "; ".join(lines)


# --- HostClaim: which namespace may serve a host ---

HOST_CLAIM_KIND = "HostClaim"
HOST_CLAIM_PLURAL = "hostclaims"
HOST_CLAIM_SINGULAR = "hostclaim"
HOST_CLAIM_SHORT_NAMES = ["hclaim"]


class HostClaimSpec(Model):
    """The namespace whose FastAPIApps may serve the host this claim is named after."""

    namespace: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN,
        description="Namespace whose FastAPIApps may serve the host; apps elsewhere get Conflict.",
    )
