"""Which IngressClass serves an app, what controller implements it, and where that controller runs.

The flavour of Ingress (annotations, Middlewares) follows the class's `spec.controller`, never its
name. The namespace the NetworkPolicy admits comes from an annotation the platform team puts on
the class, or the operator's `ingress_namespace` setting; the operator does not guess it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import InvalidSpec
from ..meta import ANNOTATION_CONTROLLER_NAMESPACE

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
# spec.controller of the controllers whose extras (prefix stripping, redirect, HSTS) we render.
CONTROLLER_FLAVOURS = {
    "k8s.io/ingress-nginx": "nginx",
    "traefik.io/ingress-controller": "traefik",
}
PLAIN = "plain"  # any other controller: a plain Ingress


@dataclass(frozen=True)
class IngressClassFacts:
    name: str
    controller: str
    namespace: str | None  # where the controller's pods run, when the class says
    is_default: bool = False

    @property
    def flavour(self) -> str:
        return CONTROLLER_FLAVOURS.get(self.controller, PLAIN)

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> IngressClassFacts:
        annotations = obj["metadata"].get("annotations") or {}
        return cls(obj["metadata"]["name"], (obj.get("spec") or {}).get("controller", ""),
                   annotations.get(ANNOTATION_CONTROLLER_NAMESPACE) or None,
                   annotations.get(DEFAULT_CLASS_ANNOTATION) == "true")


IngressClasses = Mapping[str, IngressClassFacts]

# What `fastapi-operator render` assumes with no cluster to ask: the conventional classes.
CONVENTIONAL_CLASSES: dict[str, IngressClassFacts] = {
    "nginx": IngressClassFacts("nginx", "k8s.io/ingress-nginx", "ingress-nginx"),
    "traefik": IngressClassFacts("traefik", "traefik.io/ingress-controller", "traefik", is_default=True),
}


def class_name(requested: str | None, setting: str | None, classes: IngressClasses) -> str:
    """The spec's class, else the operator's setting, else the cluster's default IngressClass."""
    chosen = requested or setting
    if chosen:
        return chosen
    defaults = sorted(name for name, facts in classes.items() if facts.is_default)
    if len(defaults) == 1:
        return defaults[0]
    if defaults:
        raise InvalidSpec(f"the cluster marks several IngressClasses as default ({', '.join(defaults)}): "
                          f"set spec.ingress.className to one of them")
    if not classes:
        raise InvalidSpec("spec.ingress.className is not set and the cluster has no IngressClass at all: install an "
                          "ingress controller (Traefik, ingress-nginx; it creates its IngressClass), then set "
                          "spec.ingress.className to its class, or set the operator's ingress_class setting")
    raise InvalidSpec("spec.ingress.className is not set, the operator has no ingress_class setting and the "
                      f"cluster has no default IngressClass: set spec.ingress.className to one of "
                      f"{', '.join(sorted(classes))}")


def class_facts(name: str, classes: IngressClasses) -> IngressClassFacts:
    facts = classes.get(name)
    if facts is None:
        raise InvalidSpec(f"spec.ingress.className: IngressClass {name!r} does not exist: "
                          + (f"use one of {', '.join(sorted(classes))}" if classes else
                             "the cluster has no IngressClass at all; install an ingress controller, which creates one"))
    return facts


def controller_namespace(facts: IngressClassFacts, setting: str | None) -> str:
    """Where the class's controller runs: the class's own annotation, else the operator's setting."""
    namespace = facts.namespace or setting
    if namespace is None:
        raise InvalidSpec(
            f"the operator cannot tell which namespace IngressClass {facts.name!r} ({facts.controller}) runs "
            f"its controller in, so it cannot make the NetworkPolicy that admits only that controller: "
            f"annotate the IngressClass with {ANNOTATION_CONTROLLER_NAMESPACE}=<namespace>, or set the "
            f"operator's ingress_namespace")
    return namespace
