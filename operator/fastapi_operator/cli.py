"""`fastapi-operator run | render | crd`."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

import yaml
from pydantic import ValidationError

from .settings import Settings


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, named after it, so flags and FASTAPI_OPERATOR_* variables never drift."""
    group = parser.add_argument_group("operator settings (default: FASTAPI_OPERATOR_<NAME> or as shown)")
    for name, field in Settings.model_fields.items():
        group.add_argument(
            f"--{name.replace('_', '-')}", dest=f"setting_{name}", metavar=name.upper(),
            help=f"{field.description} (default: {field.get_default(call_default_factory=True)!r})",
        )


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        key.removeprefix("setting_"): value for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }
    return Settings(**overrides)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import socket

    import kopf

    from . import handlers  # noqa: F401  (registers the handlers)
    from .logs import configure_logging

    configure_logging(settings.log_format, args.verbose)
    namespaces = settings.namespaces
    asyncio.run(kopf.operator(
        standalone=True,
        # kopf would otherwise name itself after the OS user, and a numeric user of an image
        # (10001) has no passwd entry: getpwuid() fails and the operator never starts.
        identity=f"fastapi-operator@{socket.gethostname()}",
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz",
        memo=kopf.Memo(settings=settings),
    ))
    return 0


def _render(args: argparse.Namespace, settings: Settings) -> int:
    from .api import FastAPIApp, describe_validation_error
    from .errors import ReconcileError
    from .render import render_app
    from .render.ingress_class import CONVENTIONAL_CLASSES
    from .yaml_output import dump_all

    text = sys.stdin.read() if args.filename == "-" else open(args.filename, encoding="utf-8").read()
    manifests = []
    for document in yaml.safe_load_all(text):
        if not document:
            continue
        try:
            app = FastAPIApp.model_validate(document)
            manifests += render_app(app, settings, CONVENTIONAL_CLASSES).every_manifest
        except ValidationError as error:
            print(f"error: {args.filename}: invalid FastAPIApp: {describe_validation_error(error)}", file=sys.stderr)
            return 1
        except ReconcileError as error:
            print(f"error: {args.filename}: {error.reason}: {error.message}", file=sys.stderr)
            return 1
    sys.stdout.write(dump_all(manifests))
    return 0


def _crd(args: argparse.Namespace, settings: Settings) -> int:
    from .crd import chart_crd_template, crd_yaml

    sys.stdout.write(chart_crd_template() if args.helm_template else crd_yaml(args.kind))
    return 0


def _reference(args: argparse.Namespace, settings: Settings) -> int:
    from .reference import reference_markdown

    sys.stdout.write(reference_markdown())
    return 0


def _rbac(args: argparse.Namespace, settings: Settings) -> int:
    from .crd import chart_rbac_template

    sys.stdout.write(chart_rbac_template())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fastapi-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator against the current cluster")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logs, kopf's included")
    _add_setting_flags(run)
    run.set_defaults(action=_run)

    render = commands.add_parser("render", help="print the objects a FastAPIApp makes, with no cluster")
    render.add_argument("-f", "--filename", required=True, help="a FastAPIApp manifest, or - for stdin")
    _add_setting_flags(render)
    render.set_defaults(action=_render)

    crd = commands.add_parser("crd", help="print a CustomResourceDefinition of the operator's API")
    crd.add_argument("--kind", choices=["FastAPIApp", "HostClaim"], default="FastAPIApp",
                     help="which CRD (default FastAPIApp)")
    crd.add_argument("--helm-template", action="store_true", help="every CRD, as the chart's template")
    crd.set_defaults(action=_crd)

    rbac = commands.add_parser("rbac", help="print the chart's namespaced RBAC rules, from the registry of child kinds")
    rbac.set_defaults(action=_rbac)
    reference = commands.add_parser("reference", help="print the API reference (docs/api.md), from the CRD")
    reference.set_defaults(action=_reference)

    args = parser.parse_args(argv)
    try:
        settings = _settings(args) if args.command not in ("crd", "rbac", "reference") else Settings()
    except ValidationError as error:
        from .api import describe_validation_error

        print(f"error: invalid setting: {describe_validation_error(error)}", file=sys.stderr)
        return 2
    return args.action(args, settings)


if __name__ == "__main__":
    sys.exit(main())
