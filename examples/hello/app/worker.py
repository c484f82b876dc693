"""A background worker (arq) beside the web process: run as `arq app.worker.WorkerSettings`, a
worker of the FastAPIApp (spec.workers). The app enqueues on REDIS_URL; the worker runs the task."""

import os
import socket

from arq.connections import RedisSettings


async def shout(ctx: dict, text: str) -> dict[str, str]:
    return {"text": text.upper(), "worker": socket.gethostname()}


class WorkerSettings:
    functions = [shout]
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://localhost:6379"))
    # `arq --check` (the worker's probe) reads this key: written every 10 s while the worker runs.
    health_check_interval = 10
