"""What the tiers share when `make test` runs them side by side (pytest-xdist, `-n 2`): each tier
that needs a cluster is one unit of work, so one worker brings up the control plane and the other
the kind cluster, once each. Units go out largest first, so the kind tier, the longest, starts at
once while the control-plane tier, the data path and the unit tests share the other worker. The
numbers each tier measures come back from the workers and are printed at the end of the run, as
in a run without xdist."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import MEASUREMENT_SECTIONS, measurements

# tests/<tier>/...: the tiers whose tests must stay on one worker (their clusters are per session).
UNIT_OF_TIER = {"integration": "controlplane", "e2e": "kind", "datapath": "datapath"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    # xdist's own `--dist loadgroup` marks groups in node ids, which pytest 9 no longer lets it do.
    from xdist.scheduler import LoadScopeScheduling

    class ByTier(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            parts = nodeid.split("/", 2)
            return UNIT_OF_TIER.get(parts[1], nodeid) if len(parts) == 3 and parts[0] == "tests" else nodeid

    return ByTier(config, log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["measurements"] = {title: dict(section) for title, section in MEASUREMENT_SECTIONS.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    for title, values in getattr(node, "workeroutput", {}).get("measurements", {}).items():
        measurements(title).update(values)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for section in MEASUREMENT_SECTIONS.values():
        if section:
            terminalreporter.section(section.title)
            for name, value in section.items():
                terminalreporter.write_line(f"{name}: {value}")
