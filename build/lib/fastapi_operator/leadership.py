"""Two replicas, one active: leader election through a coordination.k8s.io Lease.

Every replica watches and queues (so a standby's picture of the cluster is warm), but only the
holder of the Lease reconciles and collects. The holder renews the Lease every few seconds; a
standby takes it over once it has not been renewed for `lease_seconds`. Every write to the Lease
is a JSON Patch that first tests the resourceVersion that was read, so two standbys can never
both take it over.

kopf's own peering was not used: it pauses every operator when it sees two of equal priority
(identical replicas of one Deployment are), so it keeps one running only by ranking them, and it
needs its own CRD.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from kubernetes.client.exceptions import ApiException

from .kube import LEASE, Kube

log = logging.getLogger("fastapi_operator.leadership")

LEASE_NAME = "fastapi-operator"
LEASE_SECONDS = 10
RENEW_SECONDS = 2


def _parse(timestamp: str | None) -> datetime.datetime | None:
    if not timestamp:
        return None
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _format(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Decision:
    take: bool  # write the Lease with this replica as holder
    transition: bool  # the holder changes


def decide(lease: dict[str, Any] | None, identity: str, now: datetime.datetime) -> Decision:
    """Pure: what this replica does with the Lease as read."""
    if lease is None:
        return Decision(take=True, transition=True)
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    if holder == identity:
        return Decision(take=True, transition=False)
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds") or LEASE_SECONDS
    expired = not holder or renewed is None or now - renewed > datetime.timedelta(seconds=duration)
    return Decision(take=expired, transition=expired)


class LeaderElector:
    def __init__(self, kube: Kube, namespace: str, identity: str,
                 on_started: Callable[[], Awaitable[None]], on_stopped: Callable[[], Awaitable[None]]) -> None:
        self.kube, self.namespace, self.identity = kube, namespace, identity
        self.on_started, self.on_stopped = on_started, on_stopped
        self.leading = False
        self._last_renewal: datetime.datetime | None = None

    def _try_to_hold(self) -> bool:
        """One round trip: True when this replica holds the Lease afterwards."""
        now = datetime.datetime.now(datetime.timezone.utc)
        lease = self.kube.get(LEASE, self.namespace, LEASE_NAME)
        decision = decide(lease, self.identity, now)
        if not decision.take:
            return False
        spec = dict((lease or {}).get("spec") or {})
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=LEASE_SECONDS, renewTime=_format(now))
        if decision.transition:
            spec.update(acquireTime=_format(now), leaseTransitions=spec.get("leaseTransitions", -1) + 1)
        try:
            if lease is None:
                self.kube.create({"apiVersion": LEASE.api_version, "kind": LEASE.kind, "spec": spec,
                                  "metadata": {"name": LEASE_NAME, "namespace": self.namespace}})
            else:
                self.kube.json_patch(LEASE, self.namespace, LEASE_NAME, [
                    {"op": "test", "path": "/metadata/resourceVersion", "value": lease["metadata"]["resourceVersion"]},
                    {"op": "replace", "path": "/spec", "value": spec},
                ])
        except ApiException as error:
            if error.status in (409, 422):  # another replica wrote it first (name taken, or test failed)
                return False
            raise
        self._last_renewal = now
        return True

    async def run(self) -> None:
        while True:
            try:
                holding = await asyncio.to_thread(self._try_to_hold)
            except Exception as error:
                log.warning(f"could not read or renew the leader Lease: {error}")
                # Until it expires, no other replica can have taken it.
                holding = self.leading and self._last_renewal is not None and (
                    datetime.datetime.now(datetime.timezone.utc) - self._last_renewal
                    < datetime.timedelta(seconds=LEASE_SECONDS - RENEW_SECONDS))
            if holding and not self.leading:
                self.leading = True
                log.info(f"leading as {self.identity}")
                await self.on_started()
            elif not holding and self.leading:
                self.leading = False
                log.warning(f"no longer leading as {self.identity}: standing by")
                await self.on_stopped()
            await asyncio.sleep(RENEW_SECONDS)
