"""The work queue: one reconcile per app at a time, coalesced events, capped backoff."""

from __future__ import annotations

import asyncio
import threading

from fastapi_operator.workqueue import BACKOFF_MAX_SECONDS, WorkQueue, backoff_seconds


def recording_queue(workers: int = 2) -> tuple[WorkQueue, list[str]]:
    """A queue whose processing only records, in order, the keys it was given."""
    runs: list[str] = []

    async def process(key):
        runs.append(key)
        return False

    return WorkQueue(process, workers=workers), runs


async def test_events_during_a_reconcile_coalesce_into_one_more_run():
    runs: list[str] = []
    release = asyncio.Event()

    async def process(key):
        runs.append(key)
        if len(runs) == 1:
            await release.wait()
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
    loop = asyncio.get_running_loop()

    async def process(key):
        runs.append((key, loop.time()))
        return False

    queue = WorkQueue(process, workers=2)
    queue.start()
    asked = loop.time()
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
    release = asyncio.Event()

    async def process(key):
        runs.append(key)
        if key == "busy":
            await release.wait()
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
    stuck = asyncio.Event()

    async def process(key):
        if key == "slow":
            await stuck.wait()
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

    async def process(key):
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


def test_watch_events_reach_the_loop_in_order_in_one_wake_up_and_one_failure_loses_no_other():
    from fastapi_operator.handlers import Handoff
    from fastapi_operator.kube import DEPLOYMENT

    async def scenario() -> tuple[list[str], int]:
        loop = asyncio.get_running_loop()
        handled: list[str] = []

        def handle(kind, event_type, obj):
            if obj["metadata"]["name"] == "bad":
                raise RuntimeError("a handler's bug")
            handled.append(obj["metadata"]["name"])
        handoff = Handoff(loop, handle)
        wake_ups = 0
        drain = handoff.drain

        def counted_drain() -> None:
            nonlocal wake_ups
            wake_ups += 1
            drain()
        handoff.drain = counted_drain  # type: ignore[method-assign]
        names = ["a", "bad", "b", "c"]
        # From a watch's thread while the loop is busy (joined here, blocking it): all four wait
        # for one drain.
        watch = threading.Thread(target=lambda: [handoff.put(DEPLOYMENT, "MODIFIED", {"metadata": {"name": n}})
                                                 for n in names])
        watch.start()
        watch.join()
        await asyncio.sleep(0.05)
        handoff.put(DEPLOYMENT, "ADDED", {"metadata": {"name": "d"}})
        await asyncio.sleep(0.05)
        return handled, wake_ups

    handled, wake_ups = asyncio.run(scenario())
    assert handled == ["a", "b", "c", "d"]
    assert wake_ups == 2, "four events at once are one wake-up of the loop, a later one another"
