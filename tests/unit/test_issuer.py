"""The shared Let's Encrypt ClusterIssuer."""

from __future__ import annotations

import pytest

from fastapi_operator.errors import InvalidSpec
from tests.unit.conftest import by_kind, one

HOSTS = {"hosts": ["a.example.com"]}


def issuer(render, **tls):
    return one(render(ingress=HOSTS, tls=tls), "ClusterIssuer")


def test_acme_issuer_for_lets_encrypt_with_http01_on_the_apps_class(render):
    cluster_issuer = issuer(render, acme={"email": "ops@example.com"})
    acme = cluster_issuer["spec"]["acme"]
    assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert acme["email"] == "ops@example.com"
    assert acme["solvers"] == [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]
    assert "ownerReferences" not in cluster_issuer["metadata"]
    assert "namespace" not in cluster_issuer["metadata"]


def test_staging_uses_the_staging_directory(render):
    acme = issuer(render, acme={"email": "ops@example.com", "environment": "staging"})["spec"]["acme"]
    assert acme["server"] == "https://acme-staging-v02.api.letsencrypt.org/directory"


def test_apps_asking_for_the_same_issuer_share_its_name(render):
    first = issuer(render, acme={"email": "ops@example.com"})["metadata"]["name"]
    second = one(render(name="other", ingress=HOSTS, tls={"acme": {"email": "ops@example.com"}}),
                 "ClusterIssuer")["metadata"]["name"]
    assert first == second


@pytest.mark.parametrize("change", [
    {"acme": {"email": "dev@example.com"}},
    {"acme": {"email": "ops@example.com", "environment": "staging"}},
])
def test_a_different_email_or_environment_is_a_different_issuer(render, change):
    base = issuer(render, acme={"email": "ops@example.com"})["metadata"]["name"]
    assert issuer(render, **change)["metadata"]["name"] != base


def test_a_different_ingress_class_is_a_different_issuer(render):
    nginx = issuer(render, acme={"email": "ops@example.com"})["metadata"]["name"]
    traefik = one(render(ingress={**HOSTS, "className": "traefik"}, tls={"acme": {"email": "ops@example.com"}}),
                  "ClusterIssuer")["metadata"]["name"]
    assert nginx != traefik


def test_a_referenced_cluster_issuer_is_only_named_never_rendered(render):
    rendered = render(ingress=HOSTS, tls={"clusterIssuer": "corp-ca"})
    assert by_kind(rendered, "ClusterIssuer") == []
    assert one(rendered, "Ingress")["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "corp-ca"
    assert rendered.plan.referenced_issuer == "corp-ca"


def test_email_and_environment_default_from_settings(render, settings):
    configured = settings.model_copy(update={"acme_email": "team@example.com", "acme_environment": "staging"})
    acme = one(render(ingress=HOSTS, settings_=configured), "ClusterIssuer")["spec"]["acme"]
    assert acme["email"] == "team@example.com"
    assert "staging" in acme["server"]


def test_no_email_anywhere_is_an_invalid_spec_that_says_what_to_set(render):
    with pytest.raises(InvalidSpec, match="spec.tls.acme.email"):
        render(ingress=HOSTS)


def test_any_acme_server_with_the_ca_bundle_to_trust_for_it(render):
    from tests.manifests import PEM_BUNDLE

    acme = issuer(render, acme={"email": "ops@example.com", "server": "https://ca.internal:9000/acme/dir",
                                "caBundle": PEM_BUNDLE})["spec"]["acme"]
    assert acme["server"] == "https://ca.internal:9000/acme/dir"
    assert acme["caBundle"] == PEM_BUNDLE


def test_a_different_server_or_ca_bundle_is_a_different_issuer(render):
    from tests.manifests import PEM_BUNDLE

    server = {"email": "ops@example.com", "server": "https://ca.internal/dir"}
    names = {issuer(render, acme=acme)["metadata"]["name"] for acme in (
        {"email": "ops@example.com"}, server, {**server, "caBundle": PEM_BUNDLE})}
    assert len(names) == 3


def test_the_settings_server_and_ca_bundle_apply_when_the_spec_names_no_directory(render, settings):
    from tests.manifests import PEM_BUNDLE

    configured = settings.model_copy(update={"acme_server": "https://ca.internal/dir", "acme_ca_bundle": PEM_BUNDLE})
    acme = one(render(ingress=HOSTS, tls={"acme": {"email": "ops@example.com"}}, settings_=configured),
               "ClusterIssuer")["spec"]["acme"]
    assert (acme["server"], acme["caBundle"]) == ("https://ca.internal/dir", PEM_BUNDLE)
    # A Let's Encrypt environment in the spec still wins over the settings' server.
    staging = one(render(ingress=HOSTS, tls={"acme": {"email": "ops@example.com", "environment": "staging"}},
                         settings_=configured), "ClusterIssuer")["spec"]["acme"]
    assert staging["server"] == "https://acme-staging-v02.api.letsencrypt.org/directory"


def test_a_ca_bundle_that_holds_no_certificate_is_refused_naming_the_field(render):
    import base64

    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="caBundle|ca_bundle"):
        issuer(render, acme={"email": "ops@example.com", "server": "https://ca.internal/dir",
                             "caBundle": base64.b64encode(b"just text").decode()})
