"""A small FastAPI app that shows what the proxy in front of it did to each request."""

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

app = FastAPI(title="hello")


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
