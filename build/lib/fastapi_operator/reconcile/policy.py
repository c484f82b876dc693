"""The platform's policy on what a tenant may ask for: which ACME servers the cluster may be
pointed at, which ClusterIssuers an app may name, which domains a namespace may serve, and how
many hosts a namespace may hold. Pure: the spec, its plan and the settings in, a refusal out."""

from __future__ import annotations

from ..api import FastAPIApp
from ..errors import NotAllowed
from ..render.plan import ACME_SERVERS, Plan
from ..settings import Settings

EVERY_NAMESPACE = "*"


def allowed_acme_servers(settings: Settings) -> set[str]:
    """The setting, or by default Let's Encrypt's directories and the operator's own server."""
    if settings.allowed_acme_servers:
        return set(settings.allowed_acme_servers)
    return set(ACME_SERVERS.values()) | ({settings.acme_server} if settings.acme_server else set())


def in_domains(host: str, domains: list[str]) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in domains)


def refusal(app: FastAPIApp, plan: Plan, settings: Settings, hosts_held: set[str]) -> NotAllowed | None:
    """`hosts_held`: the hosts the app's namespace holds now (its HostClaims)."""
    if plan.acme is not None and plan.acme.server not in allowed_acme_servers(settings):
        return NotAllowed(f"spec.tls.acme.server {plan.acme.server} is not an ACME server this cluster may use "
                          f"(setting allowed_acme_servers): use spec.tls.acme.environment, or ask the platform team "
                          f"to allow the server")
    issuer = app.spec.tls.cluster_issuer if app.spec.tls.enabled and app.spec.ingress is not None else None
    if issuer and settings.allowed_cluster_issuers and issuer not in settings.allowed_cluster_issuers:
        return NotAllowed(f"spec.tls.clusterIssuer {issuer} is not one apps may use (setting "
                          f"allowed_cluster_issuers: {', '.join(settings.allowed_cluster_issuers)})")
    hosts = sorted(set(app.spec.ingress.hosts)) if app.spec.ingress is not None else []
    domains = settings.namespace_domains.get(app.namespace, settings.namespace_domains.get(EVERY_NAMESPACE))
    outside = [host for host in hosts if domains is not None and not in_domains(host, domains)]
    if outside:
        return NotAllowed(f"spec.ingress.hosts {', '.join(outside)}: namespace {app.namespace} may serve only "
                          f"{', '.join(domains or []) or 'no domain'} and their subdomains (setting namespace_domains)")
    cap = settings.max_hosts_per_namespace
    if cap is not None and len(hosts_held | set(hosts)) > cap:
        return NotAllowed(f"spec.ingress.hosts: namespace {app.namespace} would hold "
                          f"{len(hosts_held | set(hosts))} hosts, more than the {cap} it may (setting "
                          f"max_hosts_per_namespace): serve more paths on a host it holds, or ask the platform team")
    return None
