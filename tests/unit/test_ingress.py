"""The Ingress: HTTPS via cert-manager, HTTP redirected, the prefix stripped for nginx and Traefik."""

from __future__ import annotations

from fastapi_operator.meta import (
    redirect_https_middleware_name, service_port_name, strip_prefix_middleware_name, tls_secret_name,
)
from tests.unit.conftest import by_kind, one

NGINX = "nginx.ingress.kubernetes.io/"
TRAEFIK = "traefik.ingress.kubernetes.io/"
ACME = {"acme": {"email": "ops@example.com"}}


def test_nginx_prefix_is_stripped_by_a_rewrite(render):
    ingress = one(render(ingress={"hosts": ["a.example.com"], "path": "/api"}, tls=ACME), "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations[NGINX + "rewrite-target"] == "/$2"
    assert annotations[NGINX + "use-regex"] == "true"
    assert annotations[NGINX + "x-forwarded-prefix"] == "/api"
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert path["path"] == "/(?-i)api(/|$)(.*)" and path["pathType"] == "ImplementationSpecific"


def test_nginx_regex_path_is_literal_dots_included(render):
    ingress = one(render(ingress={"hosts": ["a.example.com"], "path": "/v1.0"}, tls=ACME), "Ingress")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/(?-i)v1\\.0(/|$)(.*)"
    assert ingress["metadata"]["annotations"][NGINX + "x-forwarded-prefix"] == "/v1.0"


def test_nginx_at_the_root_uses_a_plain_prefix(render):
    ingress = one(render(ingress={"hosts": ["a.example.com"]}, tls=ACME), "Ingress")
    assert NGINX + "rewrite-target" not in ingress["metadata"]["annotations"]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/"


def test_tls_to_a_per_app_secret_with_the_cluster_issuer_and_https_redirect(render):
    rendered = render(ingress={"hosts": ["a.example.com", "b.example.com"]}, tls=ACME)
    ingress = one(rendered, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["a.example.com", "b.example.com"], "secretName": tls_secret_name("shop", "hello")}]
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["a.example.com", "b.example.com"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == one(rendered, "ClusterIssuer")["metadata"]["name"]
    assert annotations[NGINX + "force-ssl-redirect"] == "true"
    assert rendered.plan.url == "https://a.example.com"


def test_tls_disabled_means_no_certificate_and_no_redirect(render):
    rendered = render(ingress={"hosts": ["a.example.com"]}, tls={"enabled": False})
    ingress = one(rendered, "Ingress")
    assert "tls" not in ingress["spec"]
    assert "cert-manager.io/cluster-issuer" not in ingress["metadata"]["annotations"]
    assert by_kind(rendered, "ClusterIssuer") == []
    assert rendered.plan.url == "http://a.example.com"


def test_traefik_strips_the_prefix_with_a_middleware_the_operator_manages(render):
    rendered = render(ingress={"hosts": ["a.example.com"], "path": "/api", "className": "traefik"}, tls=ACME)
    middlewares = {m["metadata"]["name"]: m["spec"] for m in by_kind(rendered, "Middleware")}
    assert middlewares[strip_prefix_middleware_name("shop", "hello")] == {"stripPrefix": {"prefixes": ["/api"]}}
    assert middlewares[redirect_https_middleware_name("shop", "hello")] == {"redirectScheme": {"scheme": "https", "permanent": True}}
    main, redirect = by_kind(rendered, "Ingress")
    assert main["metadata"]["annotations"][TRAEFIK + "router.middlewares"] == f"shop-{strip_prefix_middleware_name('shop', 'hello')}@kubernetescrd"
    assert main["metadata"]["annotations"][TRAEFIK + "router.entrypoints"] == "websecure"
    # Exactly /api and what is below /api/: Traefik's own Prefix would also take /apix.
    backend = {"service": {"name": "hello", "port": {"name": service_port_name("shop", "hello")}}}
    assert main["spec"]["rules"][0]["http"]["paths"] == [
        {"path": "/api", "pathType": "Exact", "backend": backend},
        {"path": "/api/", "pathType": "Prefix", "backend": backend}]
    assert redirect["spec"]["rules"] == main["spec"]["rules"]
    assert redirect["metadata"]["annotations"][TRAEFIK + "router.entrypoints"] == "web"
    assert redirect["metadata"]["annotations"][TRAEFIK + "router.middlewares"] == f"shop-{redirect_https_middleware_name('shop', 'hello')}@kubernetescrd"
    assert "tls" not in redirect["spec"]
    assert not any(key.startswith(NGINX) for key in main["metadata"]["annotations"])


def test_no_ingress_means_no_ingress_issuer_or_network_policy(render):
    kinds = [m["kind"] for m in render().manifests]
    assert kinds == ["Service", "Deployment"]


def test_ingress_class_defaults_from_settings(render, settings):
    rendered = render(ingress={"hosts": ["a.example.com"]}, tls=ACME,
                      settings_=settings.model_copy(update={"ingress_class": "traefik"}))
    assert by_kind(rendered, "Ingress")[0]["spec"]["ingressClassName"] == "traefik"


def test_network_policy_admits_only_the_ingress_controller_namespace(render):
    policy = one(render(ingress={"hosts": ["a.example.com"]}, tls=ACME, port=9000), "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "hello",
                                                             "app.kubernetes.io/name": "hello"}}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
        "ports": [{"port": "http", "protocol": "TCP"}]}]  # by name: a port change rolls


def test_autoscaler_targets_the_deployment_on_cpu(render):
    hpa = one(render(autoscaling={"minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70}),
              "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_full_spec_renders_every_kind(render):
    assert sorted({m["kind"] for m in render(full=True).manifests}) == [
        "ClusterIssuer", "Deployment", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "PodDisruptionBudget",
        "Service"]
