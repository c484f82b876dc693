"""The data path, with no cluster: the example app started with exactly the command that
`fastapi-operator render` produces, behind a real TLS-terminating nginx configured from the
rendered Ingress (its regex path, rewrite target and forwarded headers).

This is FastAPI's deployment guide checked end to end: the app sees https and the client's
address through the proxy, redirects stay on https under the prefix, /docs finds its
openapi.json under the prefix, and a client that is not the proxy cannot forge any of it.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from tests.harness import free_port

pytestmark = pytest.mark.datapath

# A dot, so the test also proves the prefix is matched literally (in a regex '.' is any character).
PREFIX = "/api.v1"
PROXY_ADDRESS = "127.0.0.1"  # nginx connects to the app from here: the one trusted address
CLIENT_ADDRESS = "127.0.0.3"  # a browser, as nginx sees it
FORGER_ADDRESS = "127.0.0.2"  # a pod that talks to the app directly
NGINX_PREFIX = "nginx.ingress.kubernetes.io/"

EXAMPLE_APP = Path(__file__).resolve().parents[2] / "examples" / "hello" / "app"


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}:\n{log.read_text()}")


# The image's own server command, for images without fastapi-cli: the proxy and root-path
# settings then reach uvicorn through the environment the operator renders.
CUSTOM_COMMAND = ["uvicorn", "app.main:app"]


def render(tmp: Path, port: int, command: list[str] | None) -> list[dict[str, Any]]:
    manifest = {
        "apiVersion": "fastapi-operator.dev/v1alpha1", "kind": "FastAPIApp",
        "metadata": {"name": "hello", "namespace": "shop"},
        "spec": {"image": "hello:1", "port": port, "healthPath": "/health",
                 "ingress": {"hosts": ["localhost"], "path": PREFIX, "className": "nginx"},
                 "tls": {"acme": {"email": "ops@example.com"}},
                 **({"command": command} if command else {})},
    }
    (tmp / "app.yaml").write_text(yaml.safe_dump(manifest))
    result = subprocess.run(
        [sys.executable, "-m", "fastapi_operator.cli", "render", "-f", str(tmp / "app.yaml"),
         "--forwarded-allow-ips", PROXY_ADDRESS],
        capture_output=True, text=True, check=True)
    return list(yaml.safe_load_all(result.stdout))


def nginx_config(tmp: Path, ingress: dict[str, Any], https_port: int, http_port: int, app_port: int) -> str:
    """What ingress-nginx generates for the rendered Ingress, reduced to the parts on the data path."""
    annotations = ingress["metadata"]["annotations"]
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]["path"]
    rewrite = annotations[NGINX_PREFIX + "rewrite-target"]
    assert annotations[NGINX_PREFIX + "use-regex"] == "true"
    assert annotations[NGINX_PREFIX + "force-ssl-redirect"] == "true"
    return textwrap.dedent(f"""
        pid {tmp}/nginx.pid;
        error_log {tmp}/nginx-error.log info;
        events {{}}
        http {{
            access_log {tmp}/nginx-access.log;
            client_body_temp_path {tmp}/body;
            proxy_temp_path {tmp}/proxy;
            fastcgi_temp_path {tmp}/fastcgi;
            uwsgi_temp_path {tmp}/uwsgi;
            scgi_temp_path {tmp}/scgi;
            server {{
                listen 127.0.0.1:{http_port};
                return 308 https://$host:{https_port}$request_uri;
            }}
            server {{
                listen 127.0.0.1:{https_port} ssl;
                server_name localhost;
                ssl_certificate {tmp}/tls.crt;
                ssl_certificate_key {tmp}/tls.key;
                location ~* "^{path}" {{
                    rewrite "(?i){path}" {rewrite} break;
                    proxy_set_header Host $http_host;
                    proxy_set_header X-Forwarded-For $remote_addr;
                    proxy_set_header X-Forwarded-Proto $scheme;
                    proxy_set_header X-Forwarded-Host $http_host;
                    proxy_set_header X-Forwarded-Prefix {annotations[NGINX_PREFIX + "x-forwarded-prefix"]};
                    proxy_pass http://{PROXY_ADDRESS}:{app_port};
                }}
            }}
        }}
        """)


@pytest.fixture(scope="module", params=["fastapi-run", "custom-command"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        message = "data-path test needs nginx (Debian package nginx; `make setup` installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        print(f"\n*** SKIPPED: {message} ***", file=sys.stderr)
        pytest.skip(message)

    tmp = tmp_path_factory.mktemp("datapath")
    app_port, https_port, http_port = free_port(), free_port(), free_port()
    custom = request.param == "custom-command"
    manifests = render(tmp, app_port, CUSTOM_COMMAND if custom else None)
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    ingress = next(m for m in manifests if m["kind"] == "Ingress")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    # The container's environment, exactly as rendered; Service links are off in the pod too.
    environment = {variable["name"]: variable["value"] for variable in container.get("env", [])}

    shutil.copytree(EXAMPLE_APP, tmp / "app")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(tmp / "tls.key"),
                    "-out", str(tmp / "tls.crt")], check=True, capture_output=True)
    (tmp / "nginx.conf").write_text(nginx_config(tmp, ingress, https_port, http_port, app_port))

    # `fastapi` and `uvicorn` are console scripts of the test environment, as in an image.
    executable = Path(sys.executable).parent / command[0]
    app_log = tmp / "app.log"
    app = subprocess.Popen([str(executable), *command[1:]], cwd=tmp, stdout=open(app_log, "wb"),
                           stderr=subprocess.STDOUT, env={**os.environ, **environment})
    proxy = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=open(tmp / "nginx.out", "wb"))
    try:
        wait_for_port(app_port, app, app_log)
        wait_for_port(https_port, proxy, tmp / "nginx.out")
        yield {"variant": request.param, "command": command, "environment": environment, "app_port": app_port, "https_port": https_port, "http_port": http_port,
               "ca": str(tmp / "tls.crt")}
    finally:
        for process in (proxy, app):
            process.terminate()
            process.wait(10)


def browser(stack: dict[str, Any]) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS, verify=ssl.create_default_context(cafile=stack["ca"]))
    return httpx.Client(transport=transport, base_url=f"https://localhost:{stack['https_port']}",
                        follow_redirects=False, timeout=10)


def test_the_rendered_command_is_what_the_guide_says(stack):
    command, environment = stack["command"], stack["environment"]
    if stack["variant"] == "custom-command":
        assert command == CUSTOM_COMMAND
        assert environment["UVICORN_PROXY_HEADERS"] == "true"
        assert environment["UVICORN_ROOT_PATH"] == PREFIX
        assert environment["FORWARDED_ALLOW_IPS"] == PROXY_ADDRESS
        return
    assert command[:2] == ["python3", "-c"] and command[3] == "run" and "--workers" not in command
    assert command[command.index("--root-path") + 1] == PREFIX
    assert command[command.index("--forwarded-allow-ips") + 1] == PROXY_ADDRESS


def test_an_idle_connection_outlives_uvicorns_default_keep_alive(stack):
    """The proxy (nginx here, 60 s) reuses idle connections: the app must not close one at
    uvicorn's default 5 s, or a request sent on it as it closes fails."""
    assert stack["environment"]["UVICORN_TIMEOUT_KEEP_ALIVE"] == "65"
    connection = http.client.HTTPConnection("127.0.0.1", stack["app_port"], timeout=10)
    try:
        for pause in (0, 7):
            time.sleep(pause)
            connection.request("GET", "/health")  # on the same connection: http.client never reopens one it holds
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b'{"ok":true}'
    except (http.client.RemoteDisconnected, ConnectionError) as error:
        raise AssertionError(f"the app closed an idle connection after 5 s: {error!r}") from None
    finally:
        connection.close()


def test_through_the_proxy_the_app_sees_https_and_the_clients_address(stack):
    with browser(stack) as client:
        echo = client.get(f"{PREFIX}/echo").json()
    assert echo["scheme"] == "https"
    assert echo["client"] == CLIENT_ADDRESS
    assert echo["root_path"] == PREFIX
    assert echo["url"] == f"https://localhost:{stack['https_port']}{PREFIX}/echo"


def test_a_redirect_stays_on_https_under_the_prefix(stack):
    with browser(stack) as client:
        response = client.get(f"{PREFIX}/items")
    assert response.status_code in (307, 308)
    assert response.headers["location"] == f"https://localhost:{stack['https_port']}{PREFIX}/items/"


def test_docs_under_the_prefix_load_openapi_json_under_the_prefix(stack):
    with browser(stack) as client:
        docs = client.get(f"{PREFIX}/docs")
        assert docs.status_code == 200
        assert f"url: '{PREFIX}/openapi.json'" in docs.text
        schema = client.get(f"{PREFIX}/openapi.json")
    assert schema.status_code == 200 and "/echo" in schema.json()["paths"]


def test_the_apps_own_redirect_stays_on_https_under_the_prefix(stack):
    with browser(stack) as client:
        response = client.get(f"{PREFIX}/go")
    assert response.headers["location"] == f"https://localhost:{stack['https_port']}{PREFIX}/echo"


def test_plain_http_is_redirected_to_https(stack):
    transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS)
    with httpx.Client(transport=transport, follow_redirects=False, timeout=10) as client:
        response = client.get(f"http://localhost:{stack['http_port']}{PREFIX}/echo")
    assert response.status_code == 308
    assert response.headers["location"].startswith("https://")


def test_only_the_prefix_itself_reaches_the_app(stack):
    with browser(stack) as client:
        assert client.get(f"{PREFIX}/echo").status_code == 200
        for near_miss in (PREFIX.replace(".", "x"), PREFIX.upper(), f"{PREFIX}x"):
            response = client.get(f"{near_miss}/echo")
            # nginx answers itself (no location matched); the app would have said 200 with JSON.
            assert response.status_code in (403, 404), f"{near_miss}/echo reached the app"
            assert "json" not in response.headers.get("content-type", ""), f"{near_miss}/echo reached the app"


def test_forged_forwarded_headers_from_a_non_trusted_address_are_ignored(stack):
    transport = httpx.HTTPTransport(local_address=FORGER_ADDRESS)
    with httpx.Client(transport=transport, timeout=10) as client:
        echo = client.get(f"http://127.0.0.1:{stack['app_port']}/echo",
                          headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}).json()
    assert echo["scheme"] == "http"
    assert echo["client"] == FORGER_ADDRESS
