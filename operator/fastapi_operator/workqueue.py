"""A per-app work queue: one reconcile of an app at a time, events during a reconcile coalesced
into one more run, and failures retried with capped exponential backoff. A slow or failing app
holds one worker at most, so it never delays the others by more than that. Work a change asked
for goes before background work (a resync of every app), so a Deployment edited by hand is put
back at once, not after a thousand routine checks.

Threads, as client-go's queue: the watches' threads add keys directly and worker threads
reconcile them. A reconcile is blocking I/O and CPU; handing each one to the event loop and back
(a future per reconcile, a wake-up per watch event, a timer per coalesced burst) was work of its
own, measured in docs/performance.md."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from typing import Callable, Hashable, Iterable

from .metrics import ACTIVE_WORKERS, CONTROLLER, LONGEST_RUNNING, QUEUE, QUEUE_ADDS, QUEUE_DEPTH, QUEUE_LATENCY
from .metrics import QUEUE_RETRIES, UNFINISHED_WORK, WORK_DURATION

log = logging.getLogger("fastapi_operator.workqueue")

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
URGENT, BACKGROUND = 0, 1  # queue priorities: lower goes first
STOP_WAIT_SECONDS = 30.0  # how long stopping waits for the reconciles running


def backoff_seconds(failures: int) -> float:
    return min(BACKOFF_FIRST_SECONDS * 2 ** max(failures - 1, 0), BACKOFF_MAX_SECONDS)


class Timers:
    """Calls due later, on one thread of their own: one heap, not a thread per call."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="workqueue-timers")

    def call_later(self, delay: float, call: Callable[[], None]) -> None:
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), call))
            if self._due[0][2] is call:  # due before any other: the thread waits less
                self._changed.notify()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    self._changed.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._stopped:
                    return
                call = heapq.heappop(self._due)[2]
            try:
                call()
            except Exception:
                log.exception("a delayed queueing failed")


class WorkQueue:
    def __init__(self, process: Callable[[Hashable], bool], workers: int) -> None:
        """`process(key)`, on a worker thread, returns True when the key should be retried with
        backoff. Every method may be called from any thread."""
        self._process = process
        self._workers = workers
        self._lock = threading.Condition()  # guards everything below; notified when work may be taken
        self._heap: list[tuple[int, int, Hashable]] = []
        self._order = itertools.count()  # first in, first out within a priority
        self._queued: dict[Hashable, int] = {}  # key -> the priority it waits at
        self._active: set[Hashable] = set()
        self._added_at: dict[Hashable, float] = {}  # when a waiting key was queued (queue latency)
        self._started_at: dict[Hashable, float] = {}  # when a running key's reconcile started
        self._dirty: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._soon: set[Hashable] = set()
        self._timers = Timers()
        self._threads: list[threading.Thread] = []
        self._running = True  # False while this replica stands by: keys still collect, nothing is processed
        self._stopped = False
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
        with self._lock:
            self._add(key, BACKGROUND if background else URGENT)

    def add_each(self, keys: Iterable[Hashable]) -> None:
        with self._lock:
            for key in keys:
                self._add(key, URGENT)

    def add_after(self, key: Hashable, delay: float, unless: Callable[[], bool] | None = None) -> None:
        """Queued after `delay`, unless `unless()` says by then that it is no longer needed."""
        self._timers.call_later(delay, lambda: None if unless and unless() else self.add(key))

    def add_soon(self, key: Hashable, delay: float) -> None:
        """Queued after `delay`, once however often it is asked for meanwhile: a burst of changes
        (a new Deployment's status moves three times in a second) makes one reconcile."""
        with self._lock:
            if key in self._soon:
                return
            self._soon.add(key)

        def add() -> None:
            with self._lock:
                self._soon.discard(key)
                self._add(key, URGENT)
        self._timers.call_later(delay, add)

    def pause(self) -> None:
        with self._lock:
            self._running = False

    def resume(self) -> None:
        with self._lock:
            self._running = True
            self._lock.notify_all()

    def start(self) -> None:
        self._timers.start()
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"reconcile-{n}")
                         for n in range(self._workers)]
        for thread in self._threads:
            thread.start()

    async def stop(self) -> None:
        """No reconcile starts from now on; the ones running end (for a while at most)."""
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        self._timers.stop()
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for thread in self._threads:
            await asyncio.to_thread(thread.join, max(deadline - time.monotonic(), 0))

    async def join(self) -> None:
        """Until nothing is queued or running (for tests and benchmarks)."""
        while self._queued or self._active:
            await asyncio.sleep(0.01)

    def _add(self, key: Hashable, priority: int) -> None:
        """Under the lock."""
        if key in self._active:
            self._dirty.add(key)
        elif self._queued.get(key, BACKGROUND + 1) > priority:
            if key not in self._queued:
                QUEUE_ADDS.labels(QUEUE).inc()
                self._added_at[key] = time.monotonic()
            self._queued[key] = priority
            heapq.heappush(self._heap, (priority, next(self._order), key))
            self._lock.notify()

    def _take(self) -> Hashable | None:
        """The next key to reconcile, made active; None once stopped. Waits for one."""
        with self._lock:
            while True:
                while not self._stopped and not (self._running and self._heap):
                    self._lock.wait()
                if self._stopped:
                    return None
                priority, _, key = heapq.heappop(self._heap)
                if self._queued.get(key) != priority:
                    continue  # moved up since: its urgent entry was (or will be) taken instead
                del self._queued[key]
                self._active.add(key)
                started = self._started_at[key] = time.monotonic()
                QUEUE_LATENCY.labels(QUEUE).observe(started - self._added_at.pop(key, started))
                return key

    def _done(self, key: Hashable, retry: bool) -> None:
        with self._lock:
            self._active.discard(key)
            WORK_DURATION.labels(QUEUE).observe(time.monotonic() - self._started_at.pop(key))
            if retry:
                QUEUE_RETRIES.labels(QUEUE).inc()
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                self.add_after(key, backoff_seconds(failures))
            else:
                self._failures.pop(key, None)
            if key in self._dirty:
                self._dirty.discard(key)
                self._add(key, URGENT)

    def _work(self) -> None:
        while (key := self._take()) is not None:
            try:
                retry = self._process(key)
            except Exception:
                log.exception("reconcile failed unexpectedly", extra={"key": str(key)})
                retry = True
            self._done(key, retry)
