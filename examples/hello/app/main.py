"""A small FastAPI app that shows what the proxy in front of it did to each request, and counts
the requests it serves for Prometheus."""

import os

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from prometheus_client import Counter, start_http_server

app = FastAPI(title="hello")

REQUESTS = Counter("hello_requests_total", "Requests served, by route and status", ["route", "status"])

# Metrics on a port of their own (spec.metrics.port): Prometheus is admitted to that port alone, never
# to the one that trusts forwarded headers, and /metrics is not served through the Ingress. One server
# process per container (`fastapi run`), so one metrics server.
if os.environ.get("METRICS_PORT"):
    start_http_server(int(os.environ["METRICS_PORT"]))


@app.middleware("http")
async def count_requests(request: Request, call_next):
    response = await call_next(request)
    route = request.scope.get("route")
    REQUESTS.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
    return response


@app.get("/health")
def health() -> dict[str, bool]:
    return {"ok": True}


@app.get("/items/")
def items() -> list[str]:
    # /items (no slash) redirects here: the redirect must stay on https and under the prefix.
    return ["apple", "pear"]


@app.get("/go")
def go(request: Request) -> RedirectResponse:
    return RedirectResponse(request.url_for("echo"))


@app.get("/echo")
def echo(request: Request) -> dict[str, str | None]:
    return {
        "scheme": request.url.scheme,
        "client": request.client.host if request.client else None,
        "root_path": request.scope.get("root_path"),
        "url": str(request.url),
    }


# Background work, when the app has a queue (REDIS_URL): a request enqueues a task for the arq
# worker (app/worker.py), another reads its result back.
async def _queue():
    from arq import create_pool
    from arq.connections import RedisSettings
    return await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"]))


@app.post("/tasks")
async def enqueue(text: str) -> dict[str, str]:
    queue = await _queue()
    try:
        job = await queue.enqueue_job("shout", text)
        return {"id": job.job_id}
    finally:
        await queue.aclose()


@app.get("/tasks/{job_id}")
async def task(job_id: str) -> dict[str, object]:
    from arq.jobs import Job
    queue = await _queue()
    try:
        job = Job(job_id, queue)
        info = await job.result_info()
        return {"status": str((await job.status()).value), "result": info.result if info else None}
    finally:
        await queue.aclose()


@app.get("/shared/{name}")
def shared(name: str) -> dict[str, str]:
    """A file a sidecar serves from the pod's shared volume (SIDECAR_URL), read over localhost."""
    import urllib.request
    with urllib.request.urlopen(f"{os.environ['SIDECAR_URL']}/{name}", timeout=5) as response:
        return {"content": response.read().decode()}
