"""Pebble, Let's Encrypt's test ACME server, from its Go module, with a serving certificate the rig
makes: its CA is what FastAPIApps name in spec.tls.acme.caBundle, and the operator's chart gets it
as acmeCaBundle."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.e2e.build import go_install, run
from tests.e2e.components import Component, Context

# Pebble's ACME directory, behind the serving certificate certificates() makes.
DIRECTORY = "https://pebble.pebble.svc:14000/dir"


def build(out: Path, version: str) -> None:
    go_install(out, [f"github.com/letsencrypt/pebble/v2/cmd/pebble@{version}"])


def certificates(state: Path) -> dict[str, str]:
    """A CA and a serving certificate for Pebble's ACME endpoint, once per cluster state."""
    if not (state / "pebble-ca.crt").exists():
        names = "DNS:pebble.pebble.svc,DNS:pebble.pebble.svc.cluster.local,DNS:pebble"
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=e2e ACME CA",
            "-keyout", state / "pebble-ca.key", "-out", state / "pebble-ca.crt", quiet=True)
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=pebble.pebble.svc",
            "-keyout", state / "pebble.key", "-out", state / "pebble.csr", quiet=True)
        (state / "pebble.ext").write_text(f"subjectAltName={names}\n")
        run("openssl", "x509", "-req", "-in", state / "pebble.csr", "-CA", state / "pebble-ca.crt",
            "-CAkey", state / "pebble-ca.key", "-CAcreateserial", "-days", "30", "-extfile", state / "pebble.ext",
            "-out", state / "pebble.crt", quiet=True)

    def encode(name: str) -> str:
        return base64.b64encode((state / name).read_bytes()).decode()

    return {"PEBBLE_TLS_CRT": encode("pebble.crt"), "PEBBLE_TLS_KEY": encode("pebble.key"),
            "PEBBLE_CA_BUNDLE": encode("pebble-ca.crt")}


def values(context: Context) -> dict[str, str]:
    return certificates(context.state)


COMPONENT = Component(
    folder=Path(__file__).resolve().parent,
    name="pebble", version="v2.10.1", namespace="pebble", ready=("deployment/pebble",),
    build=build, binaries={"PEBBLE_IMAGE": "pebble"}, values=values,
)
