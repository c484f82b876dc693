"""The work queue: one reconcile per app at a time, coalesced events, capped backoff."""

from __future__ import annotations

import asyncio
import threading
import time

from fastapi_operator.workqueue import BACKOFF_MAX_SECONDS, WorkQueue, backoff_seconds


def recording_queue(workers: int = 2) -> tuple[WorkQueue, list[str]]:
    """A queue whose processing only records, in order, the keys it was given."""
    runs: list[str] = []

    def process(key):
        runs.append(key)
        return False

    return WorkQueue(process, workers=workers), runs


async def test_events_during_a_reconcile_coalesce_into_one_more_run():
    runs: list[str] = []
    release = threading.Event()

    def process(key):
        runs.append(key)
        if len(runs) == 1:
            release.wait()
        return False

    queue = WorkQueue(process, workers=2)
    queue.start()
    queue.add("a")
    await asyncio.sleep(0.02)
    for _ in range(5):
        queue.add("a")
    release.set()
    await asyncio.sleep(0.05)
    await queue.join()
    await queue.stop()
    assert runs == ["a", "a"]


async def test_a_burst_of_changes_asked_for_soon_makes_one_run_after_the_delay():
    runs: list[tuple[str, float]] = []

    def process(key):
        runs.append((key, time.monotonic()))
        return False

    queue = WorkQueue(process, workers=2)
    queue.start()
    asked = time.monotonic()
    for _ in range(5):
        queue.add_soon("a", 0.1)
        await asyncio.sleep(0.01)
    queue.add_soon("b", 0.1)
    await asyncio.sleep(0.2)
    await queue.join()
    # One run each; two workers may start them in either order on a loaded machine.
    assert sorted(key for key, _ in runs) == ["a", "b"]
    assert min(at for key, at in runs if key == "a") - asked >= 0.1, "not before the delay"
    queue.add_soon("a", 0.05)  # once run, the next change is queued again
    await asyncio.sleep(0.1)
    await queue.join()
    await queue.stop()
    assert sorted(key for key, _ in runs) == ["a", "a", "b"]


async def test_a_change_goes_before_background_work_and_moves_up_a_key_waiting_there():
    runs: list[str] = []
    release = threading.Event()

    def process(key):
        runs.append(key)
        if key == "busy":
            release.wait()
        return False

    queue = WorkQueue(process, workers=1)
    queue.start()
    queue.add("busy")
    await asyncio.sleep(0.01)
    for key in ("r1", "r2", "r3"):
        queue.add(key, background=True)  # a resync
    queue.add("edited")  # a hand edit while the resync waits
    queue.add("r3")  # a change to an app the resync queued too: it moves up, and runs once
    queue.add("r1", background=True)  # already waiting: nothing changes
    release.set()
    await asyncio.sleep(0.05)
    await queue.join()
    await queue.stop()
    assert runs == ["busy", "edited", "r3", "r1", "r2"]


async def test_a_stuck_app_does_not_block_the_others():
    done: list[str] = []
    stuck = threading.Event()

    def process(key):
        if key == "slow":
            stuck.wait()
        done.append(key)
        return False

    queue = WorkQueue(process, workers=2)
    queue.start()
    queue.add("slow")
    for key in ("a", "b", "c"):
        queue.add(key)
    await asyncio.sleep(0.05)
    assert done == ["a", "b", "c"]
    stuck.set()
    await queue.join()
    await queue.stop()


async def test_failures_are_retried_and_a_crash_does_not_kill_the_worker():
    attempts: list[int] = []

    def process(key):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("boom")
        return False

    queue = WorkQueue(process, workers=1)
    queue.start()
    queue.add("a")
    await asyncio.sleep(backoff_seconds(1) + 0.2)
    await queue.join()
    await queue.stop()
    assert len(attempts) == 2


def test_backoff_doubles_and_is_capped():
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [1, 2, 4]
    assert backoff_seconds(30) == BACKOFF_MAX_SECONDS


async def test_a_paused_queue_collects_keys_and_processes_them_once_resumed():
    queue, runs = recording_queue()
    queue.pause()
    queue.start()
    for key in ("a", "b", "a"):
        queue.add(key)
    await asyncio.sleep(0.05)
    assert runs == [], "a standby processed"
    queue.resume()
    await asyncio.sleep(0.02)
    await queue.join()
    await queue.stop()
    assert sorted(runs) == ["a", "b"]


def test_a_controllers_progress_report_is_told_from_an_edit():
    from fastapi_operator.handlers import _reports_progress

    def deployment(generation, observed=None):
        return {"metadata": {"generation": generation}, "status": {} if observed is None else {"observedGeneration": observed}}

    assert _reports_progress("MODIFIED", deployment(2, observed=2)), "pods coming up on a seen spec"
    assert not _reports_progress("MODIFIED", deployment(3, observed=2)), "an edit the controller has not seen"
    assert not _reports_progress("MODIFIED", deployment(1)), "no status yet"
    revised = deployment(1)
    revised["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    assert _reports_progress("MODIFIED", revised), "a new Deployment's controller marking its revision"
    revised["metadata"]["generation"] = 2
    assert not _reports_progress("MODIFIED", revised), "an edit before the controller reported on it"
    assert not _reports_progress("DELETED", deployment(2, observed=2))
    assert not _reports_progress("MODIFIED", {"metadata": {}}), "a kind without generations (a Service)"


async def test_a_run_asked_for_later_is_dropped_if_by_then_it_is_no_longer_needed():
    queue, runs = recording_queue()
    queue.start()
    written = {"a"}  # a status was written meanwhile: the run held for it is not needed
    queue.add_after("a", 0.05, unless=lambda: "a" in written)
    queue.add_after("b", 0.05, unless=lambda: "b" in written)
    await asyncio.sleep(0.15)
    await queue.join()
    await queue.stop()
    assert runs == ["b"]


def test_watch_events_are_handled_one_at_a_time_and_one_failure_loses_no_other():
    from fastapi_operator.handlers import Changes
    from fastapi_operator.kube import DEPLOYMENT

    handled: list[str] = []
    inside = 0
    most_inside = 0

    def handle(kind, event_type, obj):
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        time.sleep(0.001)  # long enough for another thread to come in, were it let in
        inside -= 1
        if obj["metadata"]["name"].startswith("bad"):
            raise RuntimeError("a handler's bug")
        handled.append(obj["metadata"]["name"])

    changes = Changes(handle)
    watches = [threading.Thread(target=lambda w=w: [changes.put(DEPLOYMENT, "MODIFIED", {"metadata": {"name": n}})
                                                    for n in (f"a{w}", f"bad{w}", f"b{w}")])
               for w in range(4)]
    for watch in watches:
        watch.start()
    for watch in watches:
        watch.join()
    assert most_inside == 1, "two watches' events handled at once"
    assert sorted(handled) == sorted(f"{n}{w}" for w in range(4) for n in "ab")
    for w in range(4):
        assert handled.index(f"a{w}") < handled.index(f"b{w}"), "one watch's events out of order"


async def test_keys_added_from_many_threads_run_one_at_a_time_and_each_runs_after_its_last_change():
    running: set[str] = set()
    overlaps: list[str] = []
    last_started: dict[str, float] = {}
    lock = threading.Lock()

    def process(key):
        with lock:
            if key in running:
                overlaps.append(key)
            running.add(key)
            last_started[key] = time.monotonic()
        time.sleep(0.002)
        with lock:
            running.discard(key)
        return False

    queue = WorkQueue(process, workers=4)
    queue.start()
    last_added: dict[str, float] = {}

    def watch(n):
        for i in range(300):
            key = f"app-{(i + n) % 7}"
            with lock:
                last_added[key] = time.monotonic()
            queue.add(key, background=i % 3 == 0)
            time.sleep(0.0002)  # events arrive while reconciles run
    watches = [threading.Thread(target=watch, args=(n,)) for n in range(6)]
    for thread in watches:
        thread.start()
    for thread in watches:
        thread.join()
    await queue.join()
    await queue.stop()
    assert overlaps == [], "one app reconciled twice at once"
    for key, added in last_added.items():
        assert last_started[key] >= added, f"{key}'s last change never reconciled"
