"""The label keys the operator puts on what it makes. Apart from meta.py so that api.py can name
them in its rules (meta.py needs api.py)."""

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
# Which of the app's workers a pod belongs to: with the instance label, a worker Deployment's
# selector. Not the web pods' selector keys, so the app's Service never sends a worker a request.
LABEL_WORKER = "fastapi-operator.dev/worker"
LABEL_SCHEDULE = "fastapi-operator.dev/schedule"

# Pod labels a user may not set: the first two select the app's pods (Service, Deployment,
# NetworkPolicy, PodDisruptionBudget), the third is how the operator finds what it made, the
# fourth selects a worker's pods (on the web pods it would hand them to a worker's Deployment).
RESERVED_POD_LABELS = (LABEL_INSTANCE, LABEL_NAME, LABEL_MANAGED_BY, LABEL_WORKER)
# Pod annotations a user may not set: each can lift a confinement of Pod Security "restricted".
RESERVED_POD_ANNOTATION_PREFIXES = (
    "container.apparmor.security.beta.kubernetes.io/", "seccomp.security.alpha.kubernetes.io/",
)
