"""Changes to every app's pods that come from the operator itself (a new version's rendering, a
changed setting) roll a few apps at a time, not all at once: at most
`max_concurrent_operator_rollouts` Deployments are rolling when one of them starts, and each
waiting app starts when one of those is Available.

Whether a change comes from the operator: the app's status records the generation whose pods
the Deployment's template says (status.templateGeneration). A pod template that changes while the
generation is still that one is the operator's doing. Counting what rolls reads the cache, so it survives a
restart or a failover; the apps admitted in the last moments, whose write the cache may not show
yet, are remembered here."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable

from ..compare import changes_pod_template
from ..errors import RolloutQueued
from ..kube import DEPLOYMENT
from ..meta import LABEL_MANAGED_BY, LABEL_WORKER, OPERATOR_NAME
from ..status import availability
from .reads import Reads

# How long an admitted app counts as rolling on the pacer's word alone: its Deployment write is in
# the cache well before.
ADMITTED_SECONDS = 30.0


def comes_from_operator(desired: dict[str, Any], live: dict[str, Any] | None, generation: int | None,
                        template_generation: int | None) -> bool:
    """Would this write change the pods while the app's spec is the one its pods were written
    for? An app from before status.templateGeneration counts as the operator's too: an upgrade is
    exactly that case."""
    if live is None or not changes_pod_template(desired, live):
        return False
    return template_generation is None or template_generation == generation


def is_rolling(deployment: dict[str, Any]) -> bool:
    """Rolling out and not given up: a rollout past its progress deadline no longer holds a place."""
    value = availability(deployment)
    return value.status != "True" and value.reason != "RolloutFailed"


class Pacer:
    def __init__(self, reads: Reads, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.reads = reads
        self.limit = limit
        self.clock = clock
        self.lock = threading.Lock()
        self.admitted: dict[Hashable, float] = {}
        self.waiting: OrderedDict[Hashable, None] = OrderedDict()
        self.wake: Callable[[list[Hashable]], None] = lambda keys: None  # the handlers queue them

    def rolling(self) -> set[Hashable]:
        deployments = self.reads.list(DEPLOYMENT, label_selector=f"{LABEL_MANAGED_BY}={OPERATOR_NAME}")
        now = self.clock()
        self.admitted = {key: at for key, at in self.admitted.items() if now - at < ADMITTED_SECONDS}
        # Apps, by their web Deployments: a worker's rolls with its app's, and takes no place of its own.
        return {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in deployments
                if is_rolling(d) and LABEL_WORKER not in (d["metadata"].get("labels") or {})} | set(self.admitted)

    def admit(self, key: Hashable) -> RolloutQueued | None:
        """None: the app may roll now. Otherwise why it waits; it is woken when a place frees."""
        with self.lock:
            rolling = self.rolling()
            if key in rolling or len(rolling) < self.limit:
                self.admitted[key] = self.clock()
                self.waiting.pop(key, None)
                return None
            self.waiting[key] = None
            return RolloutQueued(
                f"a change to this app's pods that comes from the operator (a new version, a changed setting) "
                f"waits for its turn: {len(rolling)} apps are rolling out and the operator starts at most "
                f"{self.limit} at once (setting max_concurrent_operator_rollouts); the current pods keep serving")

    def settled(self, key: Hashable) -> None:
        """The app's pods run its spec: its place goes to the apps waiting longest."""
        with self.lock:
            self.admitted.pop(key, None)
            self.waiting.pop(key, None)
            if not self.waiting:
                return
            free = self.limit - len(self.rolling())
            woken = [self.waiting.popitem(last=False)[0] for _ in range(min(max(free, 0), len(self.waiting)))]
        if woken:
            self.wake(woken)
