"""Operator settings: environment variables FASTAPI_OPERATOR_<NAME>, or the matching
`fastapi-operator run --<name>` flags. Every setting has a default."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FASTAPI_OPERATOR_", frozen=True)

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch, comma-separated; empty watches all.",
    )
    ingress_class: str | None = Field(
        None, description="IngressClass when spec.ingress.className is absent; unset: the cluster's default "
        "IngressClass.")
    ingress_namespace: str | None = Field(
        None, description="Namespace of the ingress controller, for IngressClasses without the "
        "fastapi-operator.dev/controller-namespace annotation: the only namespace the NetworkPolicy lets in.",
    )
    monitoring_namespace: str | None = Field(
        None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Namespace Prometheus runs in: the NetworkPolicy of an app with spec.metrics admits it to the "
        "metrics port; unset: such an app with an ingress is InvalidSpec, since nothing could scrape it.")
    gateway: str | None = Field(
        None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$",
        description="Gateway (namespace/name) for apps whose spec.ingress names neither gateway nor className; "
        "unset: those apps get an Ingress.")
    acme_email: str | None = Field(None, description="ACME email when spec.tls.acme.email is absent.")
    acme_environment: Literal["production", "staging"] = Field(
        "production", description="Let's Encrypt environment when spec.tls.acme sets neither environment nor server."
    )
    acme_server: str | None = Field(
        None, pattern=r"^https://\S+$",
        description="ACME directory URL when spec.tls.acme sets neither environment nor server; "
        "unset means Let's Encrypt (acme_environment).",
    )
    acme_ca_bundle: str | None = Field(
        None, description="Base64 PEM CAs to trust for the ACME server when spec.tls.acme.caBundle is absent.",
    )
    forwarded_allow_ips: str = Field(
        "*",
        description=(
            "--forwarded-allow-ips for apps behind the Ingress. '*' is safe because the "
            "rendered NetworkPolicy admits only the ingress controller's namespace; narrow it "
            "to the controller's pod CIDR if your CNI does not enforce NetworkPolicy."
        ),
    )
    resync_seconds: float = Field(300, gt=0, description="Period of the full resync of every app.")
    log_format: Literal["text", "json"] = Field("text", description="text or json (one event a line).")
    liveness_port: int = Field(8080, ge=1, le=65535, description="Port of /healthz.")
    metrics_port: int = Field(8081, ge=0, le=65535, description="Port of /metrics (Prometheus); 0: none.")
    workers: int = Field(4, ge=1, description="Apps reconciled at once.")
    max_concurrent_operator_rollouts: int = Field(
        10, ge=1,
        description="Apps whose pods the operator itself changes (a new version's rendering, a changed setting) "
        "that roll at once; the others wait until one is Available. A change to an app's spec is never held.")
    allowed_acme_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="ACME directory URLs apps may name in spec.tls.acme.server, comma-separated; "
        "empty: Let's Encrypt's production and staging directories and acme_server.")
    allowed_cluster_issuers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="ClusterIssuers apps may name in spec.tls.clusterIssuer, comma-separated; "
        "empty: any.")
    namespace_domains: dict[str, list[str]] = Field(
        default_factory=dict, description="Domains each namespace may serve (a host is the domain or a subdomain), "
        "as JSON: {\"team-a\": [\"a.example.com\"], \"*\": [\"apps.example.com\"]}; \"*\" covers namespaces not "
        "listed; empty: any domain.")
    max_hosts_per_namespace: int | None = Field(
        None, ge=1, description="Most hosts one namespace may hold (HostClaims); unset: no limit.")
    conflict_names_owner: bool = Field(
        False, description="Whether a Conflict on a host names the namespace and app that hold it; off, it says "
        "only that another namespace does (one tenant learns nothing of another's apps).")
    leader_election: bool = Field(
        False, description="Reconcile only while holding the fastapi-operator Lease in lease_namespace, so "
        "replicas can stand by (the chart turns it on).")
    lease_namespace: str = Field("default", description="Namespace of the leader Lease (the chart: its own).")

    @field_validator("namespace_domains", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        """A flag's value is a string; the variable's is decoded as JSON by pydantic-settings."""
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("namespaces", "allowed_acme_servers", "allowed_cluster_issuers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
