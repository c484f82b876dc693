"""Generated FastAPIApp specs for the fuzz tests: each field is left out, set to something valid,
or set to something a user could plausibly get wrong (odd characters, out-of-range numbers, fields
that exclude each other), so one spec often combines several problems.

`make test` runs a bounded number (FASTAPI_OPERATOR_FUZZ_EXAMPLES, default below); `make fuzz`
runs many more."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.manifests import PEM_BUNDLE

settings.register_profile(
    "fastapi-operator", deadline=None, derandomize=not os.environ.get("FASTAPI_OPERATOR_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    max_examples=int(os.environ.get("FASTAPI_OPERATOR_FUZZ_EXAMPLES", "120")),
)
settings.load_profile("fastapi-operator")

_printable = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_dns_label = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z")
_hosts = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}.example.com", _dns_label, _dns_label),
    st.sampled_from(["*.example.com", "Hello.example.com", "a..b", "-a.example.com", "x" * 260]),
    _printable,
)
_paths = st.one_of(st.sampled_from(["/", "/api", "/v1.0", "/a/b_c~d", "api", "/api/", "/a(.*)", "//", "/é"]),
                   st.builds(lambda p: "/" + p, _printable))
_quantities = st.one_of(st.sampled_from(["100m", "256Mi", "1", 2, "0.5", "1e3", "lots", "", "-1", "1.5Gi"]),
                        st.integers(-5, 10**6), _printable)
_ints = st.one_of(st.integers(-3, 70000), st.sampled_from([0, 1, 2, 65535, 65536, 2**31]))
_names = st.one_of(_dns_label, st.sampled_from(["Migrate_DB", "", "a" * 70, "1app"]), _printable)
_env_names = st.one_of(st.sampled_from(["GREETING", "DATABASE_URL", "", "1X", "A-B", "with space"]), _printable)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


_env = st.lists(_optional(
    name=_env_names, value=_printable,
    valueFrom=st.one_of(
        st.fixed_dictionaries({"secretKeyRef": _optional(name=_names, key=_names, optional=st.booleans())}),
        st.fixed_dictionaries({"fieldRef": _optional(fieldPath=st.sampled_from(["metadata.name", "", "spec.x"]))}),
        st.fixed_dictionaries({"resourceFieldRef": _optional(resource=st.sampled_from(["limits.memory", "x"]),
                                                             divisor=_quantities)}),
    ),
), max_size=3)

_acme = _optional(
    email=st.sampled_from(["ops@example.com", "ops-at-example", ""]),
    environment=st.sampled_from(["production", "staging", "testing"]),
    server=st.sampled_from(["https://acme.example.com/dir", "http://acme.example.com/dir", "https://"]),
    caBundle=st.sampled_from([PEM_BUNDLE, "not base64!", "aGVsbG8="]),
)

_ingress = _optional(
    hosts=st.lists(_hosts, max_size=3),
    path=_paths,
    className=st.one_of(st.sampled_from(["nginx", "traefik", "unknown", ""]), _printable),
    gateway=_optional(name=st.one_of(st.just("public"), _names), namespace=st.one_of(st.just("infra"), _names),
                      listeners=st.sampled_from(["ListenerSet", "Gateway", "Both"])),
    hsts=_optional(maxAgeSeconds=st.integers(-1, 10**8), includeSubDomains=st.booleans(), preload=st.booleans()),
)

# Every field anything at all, valid or not: most such specs are refused, which tests the refusals.
ANY_SPECS = _optional(
    image=st.one_of(st.just("registry.example.com/shop/hello:1.4.2"), st.sampled_from(["", "has space"]), _printable),
    app=st.sampled_from(["app/main.py", "app.main:app", "", "main.py"]),
    command=st.lists(_printable, max_size=3),
    port=_ints,
    replicas=_ints,
    resources=_optional(requests=st.dictionaries(st.sampled_from(["cpu", "memory", "x"]), _quantities, max_size=2),
                        limits=st.dictionaries(st.sampled_from(["cpu", "memory"]), _quantities, max_size=2)),
    env=_env,
    envFrom=st.lists(_optional(prefix=_printable, configMapRef=_optional(name=_names, optional=st.booleans())),
                     max_size=2),
    preStart=st.lists(_optional(name=_names, command=st.lists(_printable, max_size=2),
                                run=st.sampled_from(["EveryPod", "OncePerRollout", "Twice"]), env=_env), max_size=3),
    healthPath=st.one_of(st.sampled_from(["/health", "health", "/"]), _printable),
    ingress=_ingress,
    tls=_optional(enabled=st.booleans(), acme=_acme, clusterIssuer=st.one_of(st.just("my-issuer"), _names)),
    autoscaling=_optional(minReplicas=_ints, maxReplicas=_ints, targetCPUUtilizationPercentage=_ints),
    shutdown=_optional(drainSeconds=_ints, timeoutSeconds=_ints),
    imagePullSecrets=st.lists(_optional(name=_names), max_size=2),
    serviceAccountName=_names,
    nodeSelector=st.dictionaries(_printable, _printable, max_size=2),
    tolerations=st.lists(_optional(key=_printable, operator=st.sampled_from(["Exists", "Equal", "Maybe"]),
                                   effect=st.sampled_from(["NoSchedule", "Sometimes"])), max_size=2),
    podLabels=st.dictionaries(st.one_of(st.just("team"), st.just("app.kubernetes.io/name"), _printable),
                              st.one_of(st.just("shop"), _printable), max_size=2),
    podAnnotations=st.dictionaries(st.one_of(st.just("prometheus.io/scrape"), _printable), _printable, max_size=2),
    unknownField=st.just(1),
)

# Each field valid on its own, so what is left to catch is how fields combine (acme with
# clusterIssuer, className with gateway, HSTS without TLS, min above max) and what only the API
# server or the renderer can judge (env names, quantities in context, a command's text).
_ascii = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
_valid_hosts = st.lists(st.builds(lambda a, b: f"{a}.{b}.example.com", _dns_label, _dns_label), min_size=1, max_size=3,
                        unique=True)
_valid_env = st.lists(st.fixed_dictionaries({"name": st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,12}\Z"),
                                             "value": _printable}), max_size=3)
VALID_FIELD_SPECS = st.fixed_dictionaries({"image": st.just("registry.example.com/shop/hello:1.4.2")}, optional=dict(
    app=st.sampled_from(["app/main.py", "app.main:app"]),
    command=st.lists(_ascii, min_size=1, max_size=3),
    port=st.integers(1, 65535),
    replicas=st.integers(0, 10),
    resources=_optional(requests=_optional(cpu=st.sampled_from(["100m", "1", 2]), memory=st.sampled_from(["256Mi", "1Gi"])),
                        limits=_optional(memory=st.sampled_from(["256Mi", "1Gi", 1073741824]))),
    env=_valid_env,
    preStart=st.lists(st.fixed_dictionaries(
        {"name": _dns_label, "command": st.lists(_ascii, min_size=1, max_size=2)},
        optional={"run": st.sampled_from(["EveryPod", "OncePerRollout"]), "env": _valid_env}),
        max_size=2, unique_by=lambda step: step["name"]),
    healthPath=st.sampled_from(["/health", "/", "/healthz?full=1"]),
    ingress=st.fixed_dictionaries({"hosts": _valid_hosts}, optional=dict(
        path=st.sampled_from(["/", "/api", "/v1.0", "/a/b_c~d"]),
        className=st.sampled_from(["nginx", "traefik"]),
        gateway=_optional(name=st.just("public"), namespace=st.just("infra"),
                          listeners=st.sampled_from(["ListenerSet", "Gateway"])),
        hsts=_optional(maxAgeSeconds=st.integers(0, 63072000), includeSubDomains=st.booleans(), preload=st.booleans()),
    )),
    tls=_optional(enabled=st.booleans(), acme=_optional(email=st.just("ops@example.com"),
                                                         environment=st.sampled_from(["production", "staging"]),
                                                         server=st.just("https://acme.example.com/dir")),
                  clusterIssuer=st.just("my-issuer")),
    autoscaling=st.fixed_dictionaries({"maxReplicas": st.integers(1, 10)},
                                      optional={"minReplicas": st.integers(1, 10),
                                                "targetCPUUtilizationPercentage": st.integers(1, 100)}),
    shutdown=_optional(drainSeconds=st.integers(0, 30), timeoutSeconds=st.integers(1, 60)),
    imagePullSecrets=st.lists(st.fixed_dictionaries({"name": _dns_label}), max_size=2),
    serviceAccountName=_dns_label,
    nodeSelector=st.dictionaries(st.sampled_from(["pool", "kubernetes.io/arch"]), _dns_label, max_size=2),
    podLabels=st.dictionaries(st.sampled_from(["team", "tier"]), _dns_label, max_size=2),
    podAnnotations=st.dictionaries(st.sampled_from(["prometheus.io/scrape", "note"]), _printable, max_size=2),
))

SPECS = st.one_of(VALID_FIELD_SPECS, ANY_SPECS)


def manifest(spec: dict[str, Any], namespace: str = "fuzz", name: str = "fuzzed") -> dict[str, Any]:
    return {"apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}
