"""A per-app work queue: one reconcile of an app at a time, events during a reconcile coalesced
into one more run, and failures retried with capped exponential backoff. A slow or failing app
holds one worker at most, so it never delays the others by more than that. Work a change asked
for goes before background work (a resync of every app), so a Deployment edited by hand is put
back at once, not after a thousand routine checks."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Awaitable, Callable, Hashable

from .metrics import ACTIVE_WORKERS, CONTROLLER, LONGEST_RUNNING, QUEUE, QUEUE_ADDS, QUEUE_DEPTH, QUEUE_LATENCY
from .metrics import QUEUE_RETRIES, UNFINISHED_WORK, WORK_DURATION

log = logging.getLogger("fastapi_operator.workqueue")

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
URGENT, BACKGROUND = 0, 1  # queue priorities: lower goes first


def backoff_seconds(failures: int) -> float:
    return min(BACKOFF_FIRST_SECONDS * 2 ** max(failures - 1, 0), BACKOFF_MAX_SECONDS)


class WorkQueue:
    def __init__(self, process: Callable[[Hashable], Awaitable[bool]], workers: int) -> None:
        """`process(key)` returns True when the key should be retried with backoff."""
        self._process = process
        self._workers = workers
        self._queue: asyncio.PriorityQueue[tuple[int, int, Hashable]] = asyncio.PriorityQueue()
        self._order = itertools.count()  # first in, first out within a priority
        self._queued: dict[Hashable, int] = {}  # key -> the priority it waits at
        self._active: set[Hashable] = set()
        self._added_at: dict[Hashable, float] = {}  # when a waiting key was queued (queue latency)
        self._started_at: dict[Hashable, float] = {}  # when a running key's reconcile started
        self._dirty: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._soon: set[Hashable] = set()
        self._tasks: list[asyncio.Task[None]] = []
        # Cleared while this replica stands by: keys still collect, nothing is processed.
        self._running = asyncio.Event()
        self._running.set()
        # Read at scrape time, as client-go's queue reports them.
        QUEUE_DEPTH.labels(QUEUE).set_function(lambda: len(self._queued))
        ACTIVE_WORKERS.labels(CONTROLLER).set_function(lambda: len(self._active))
        LONGEST_RUNNING.labels(QUEUE).set_function(
            lambda: max((time.monotonic() - t for t in list(self._started_at.values())), default=0.0))
        UNFINISHED_WORK.labels(QUEUE).set_function(
            lambda: sum(time.monotonic() - t for t in list(self._started_at.values())))

    def add(self, key: Hashable, background: bool = False) -> None:
        """Queue `key`; `background` work waits behind every change. A key already waiting in the
        background that a change asks for moves up."""
        priority = BACKGROUND if background else URGENT
        if key in self._active:
            self._dirty.add(key)
        elif self._queued.get(key, BACKGROUND + 1) > priority:
            if key not in self._queued:
                QUEUE_ADDS.labels(QUEUE).inc()
                self._added_at[key] = time.monotonic()
            self._queued[key] = priority
            self._queue.put_nowait((priority, next(self._order), key))

    def add_after(self, key: Hashable, delay: float, unless: Callable[[], bool] | None = None) -> None:
        """Queued after `delay`, unless `unless()` says by then that it is no longer needed."""
        asyncio.get_running_loop().call_later(delay, lambda: None if unless and unless() else self.add(key))

    def add_soon(self, key: Hashable, delay: float) -> None:
        """Queued after `delay`, once however often it is asked for meanwhile: a burst of changes
        (a new Deployment's status moves three times in a second) makes one reconcile."""
        if key in self._soon:
            return
        self._soon.add(key)

        def add() -> None:
            self._soon.discard(key)
            self.add(key)
        asyncio.get_running_loop().call_later(delay, add)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def join(self) -> None:
        """Until nothing is queued or running (for tests and benchmarks)."""
        while self._queued or self._active:
            await asyncio.sleep(0.01)

    async def _work(self) -> None:
        while True:
            await self._running.wait()
            entry = await self._queue.get()
            priority, _, key = entry
            if self._queued.get(key) != priority:
                continue  # moved up since: its urgent entry was (or will be) taken instead
            if not self._running.is_set():  # paused while waiting: leave it for the next leader turn
                self._queue.put_nowait(entry)
                continue
            del self._queued[key]
            started = self._started_at[key] = time.monotonic()
            QUEUE_LATENCY.labels(QUEUE).observe(started - self._added_at.pop(key, started))
            self._active.add(key)
            try:
                retry = await self._process(key)
            except Exception:
                log.exception("reconcile failed unexpectedly", extra={"key": str(key)})
                retry = True
            finally:
                self._active.discard(key)
                WORK_DURATION.labels(QUEUE).observe(time.monotonic() - self._started_at.pop(key, started))
            if retry:
                QUEUE_RETRIES.labels(QUEUE).inc()
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                self.add_after(key, backoff_seconds(failures))
            else:
                self._failures.pop(key, None)
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
