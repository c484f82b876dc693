"""Two tenants whose names join alike (`team/payments-api` and `team-payments/api`), each with a
path prefix and HSTS, through Traefik: each gets its own prefix strip and its own HSTS header.
With Middlewares named `<app>-strip-prefix`, both would have referred to
`team-payments-api-strip-prefix@kubernetescrd`, and one tenant's Middleware would serve the other."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
import yaml

from tests.e2e import rig
from tests.e2e.test_user_path import PEBBLE_DIRECTORY, condition, curl, get, kubectl
from tests.harness import eventually

SUFFIX = uuid.uuid4().hex[:4]
TENANTS = {  # namespace, app name, path prefix, HSTS max-age
    "first": (f"team{SUFFIX}", "payments-api", "/pay", 600),
    "second": (f"team{SUFFIX}-payments", "api", "/api", 1200),
}


def manifest(namespace: str, name: str, prefix: str, max_age: int) -> dict:
    ca_bundle = base64.b64encode(Path(rig.CACHE / "cluster" / "pebble-ca.crt").read_bytes()).decode()
    return {
        "apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": rig.HELLO_IMAGE, "replicas": 1, "healthPath": "/health",
            "resources": {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
            "ingress": {"hosts": [f"{namespace}.{rig.TEST_DOMAIN}"], "path": prefix, "className": "traefik",
                        "hsts": {"maxAgeSeconds": max_age}},
            "tls": {"acme": {"email": "ops@example.com", "server": PEBBLE_DIRECTORY, "caBundle": ca_bundle}},
        },
    }


@pytest.fixture(scope="module")
def tenants(kind_cluster) -> dict:
    for namespace, name, prefix, max_age in TENANTS.values():
        kubectl(kind_cluster, "create", "namespace", namespace)
        kubectl(kind_cluster, "apply", "-f", "-", stdin=yaml.safe_dump(manifest(namespace, name, prefix, max_age)))
    for namespace, name, _, _ in TENANTS.values():
        eventually(lambda namespace=namespace, name=name: condition(get(kind_cluster, "fapp", name, namespace) or {},
                                                                    "Ready").get("status") == "True",
                   timeout=300, interval=2, message=f"{namespace}/{name} Ready")
    yield TENANTS
    for namespace, _, _, _ in TENANTS.values():
        kubectl(kind_cluster, "delete", "namespace", namespace, "--wait=false", check=False)


def test_each_tenant_gets_its_own_prefix_strip_and_hsts_through_traefik(kind_cluster, tenants, pebble_root):
    for namespace, _, prefix, max_age in tenants.values():
        host = f"{namespace}.{rig.TEST_DOMAIN}"

        def answer(host=host, prefix=prefix):
            try:
                return curl(kind_cluster, f"{prefix}/echo", ca=pebble_root, host=host)
            except AssertionError as error:
                assert "certificate" in str(error), error
                return None
        status, headers, body = eventually(answer, timeout=60, interval=1, message=f"{host} served")
        assert status == 200, (host, status, body)
        assert json.loads(body)["root_path"] == prefix, "another tenant's prefix strip served this host"
        assert headers.get("strict-transport-security") == f"max-age={max_age}", "another tenant's HSTS"
