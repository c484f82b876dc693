"""The reconcile of one FastAPIApp, split along its seams: reads (cache or API), the pure decide
step (rollout.py, migrations.py, pacing.py, policy.py), the writes of children (children.py), the
objects apps share (shared.py), and what the user is told (reporting.py). reconciler.py puts them
together."""

from .reconciler import Outcome, Reconciler, is_left_alone
from .reporting import by_verb

__all__ = ["Outcome", "Reconciler", "by_verb", "is_left_alone"]
