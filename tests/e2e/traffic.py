"""Steady traffic through Traefik's plain-HTTP port while something changes, counting every
answer that is not a 200."""

from __future__ import annotations

import http.client
import threading
import time

from tests.e2e import rig


class SteadyTraffic:
    """`clients` threads, each sending one request every `interval` seconds on a new connection
    (as separate users would), to `path` on `host`."""

    def __init__(self, host: str, path: str, clients: int = 4, interval: float = 0.1) -> None:
        self.host, self.path, self.clients, self.interval = host, path, clients, interval
        self.statuses: list[int] = []
        self.samples: list[tuple[float, int]] = []  # (when the request was sent, its status)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = self._stopped = 0.0

    def _client(self) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", rig.HTTP_PORT, timeout=10)
                connection.request("GET", self.path, headers={"Host": self.host})
                response = connection.getresponse()
                response.read()
                status = response.status
                connection.close()
            except OSError:
                status = 0
            self.statuses.append(status)
            self.samples.append((sent, status))
            self._stop.wait(self.interval)

    def __enter__(self) -> SteadyTraffic:
        self._started = time.monotonic()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._stopped = time.monotonic()

    @property
    def failed(self) -> int:
        return sum(1 for status in self.statuses if status != 200)

    @property
    def rate(self) -> float:
        return len(self.statuses) / max((self._stopped or time.monotonic()) - self._started, 1e-9)

    def failed_between(self, start: float, end: float) -> int:
        return sum(1 for sent, status in self.samples if start <= sent < end and status != 200)

    def sent_between(self, start: float, end: float) -> int:
        return sum(1 for sent, _ in self.samples if start <= sent < end)

    def first_ok_after(self, start: float) -> float | None:
        """When the first request sent at or after `start` that answered 200 was sent."""
        return next((sent for sent, status in self.samples if sent >= start and status == 200), None)

    def failures_between(self, start: float, end: float) -> dict[int, int]:
        """The statuses that were not 200 among requests sent in [start, end), and how many of each
        (0: no answer)."""
        counts: dict[int, int] = {}
        for sent, status in self.samples:
            if start <= sent < end and status != 200:
                counts[status] = counts.get(status, 0) + 1
        return counts

    def summary(self) -> str:
        return f"{self.failed} failed of {len(self.statuses)} requests at {self.rate:.0f}/s"
