"""The label keys the operator puts on what it makes. Apart from meta.py so that api.py can name
them in its rules (meta.py needs api.py)."""

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"

# Pod labels a user may not set: the first two select the app's pods (Service, Deployment,
# NetworkPolicy, PodDisruptionBudget), the third is how the operator finds what it made.
RESERVED_POD_LABELS = (LABEL_INSTANCE, LABEL_NAME, LABEL_MANAGED_BY)
# Pod annotations a user may not set: each can lift a confinement of Pod Security "restricted".
RESERVED_POD_ANNOTATION_PREFIXES = (
    "container.apparmor.security.beta.kubernetes.io/", "seccomp.security.alpha.kubernetes.io/",
)
