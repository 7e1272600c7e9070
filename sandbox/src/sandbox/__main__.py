"""`python -m sandbox michigan|wes --port N [...]`: run one simulator until Ctrl-C.

Every fault knob has a flag (see `--help`); `--config FILE` loads a JSON object of options
(the fields of `CloudgeneOptions` / `WesOptions`), and flags given on the command line win.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from sandbox.cloudgene import CloudgeneOptions, build_cloudgene
from sandbox.cloudgene.options import PRESETS, preset_panels
from sandbox.faults import Faults
from sandbox.server import SandboxServer, Simulator
from sandbox.users import parse_user
from sandbox.wes import WesOptions, build_wes
from sandbox.wes.options import OAuthClient


def _fault_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("faults (all changeable at run time: PUT /_sandbox/faults)")
    group.add_argument("--latency-ms", type=float)
    group.add_argument(
        "--latency-max-ms", type=float, help="random latency between --latency-ms and this"
    )
    group.add_argument(
        "--error-rate", type=float, help="share of requests answered 500/502/503 (0-1)"
    )
    group.add_argument("--error-statuses", help="comma-separated, default 500,502,503")
    group.add_argument("--outage", choices=["none", "refuse", "hang"])
    group.add_argument("--outage-seconds", type=float, help="end the outage after this long")
    group.add_argument("--malformed-json", action="store_true", default=None)
    group.add_argument("--expired-tokens", action="store_true", default=None)
    group.add_argument("--stuck-jobs", action="store_true", default=None)
    group.add_argument("--fail-at-step", choices=["validation", "qc", "imputation", "export"])
    group.add_argument("--fail-mode", choices=["error", "dead"])
    group.add_argument(
        "--run-detour", choices=["PAUSED", "UNKNOWN", "PREEMPTED"], help="WES runs pass through"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    kinds = parser.add_subparsers(dest="kind", required=True)
    for kind in ("michigan", "wes"):
        sub = kinds.add_parser(kind)
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=8101 if kind == "michigan" else 8102)
        sub.add_argument(
            "--admin-port", type=int, help="extra port for /_sandbox/ that stays open in outages"
        )
        sub.add_argument("--config", type=Path, help="JSON file of options")
        sub.add_argument("--seed", type=int)
        sub.add_argument("--min-samples", type=int)
        sub.add_argument("--max-samples", type=int)
        _fault_flags(sub)
        if kind == "michigan":
            sub.add_argument("--flavour", choices=["cg3", "cg2"])
            sub.add_argument(
                "--preset", choices=sorted(PRESETS), help="panels and app ids of a public server"
            )
            sub.add_argument("--app-id", action="append", dest="app_ids")
            sub.add_argument("--name")
            sub.add_argument(
                "--user", action="append", dest="users", help="username:token[:Full Name[:mail]]"
            )
            sub.add_argument("--max-running-jobs-per-user", type=int)
            sub.add_argument("--max-parallel-jobs", type=int)
            sub.add_argument("--max-downloads", type=int)
            sub.add_argument("--queue-seconds", type=float)
            sub.add_argument("--step-seconds", type=float)
            sub.add_argument("--export-seconds", type=float)
            sub.add_argument("--notify-after-seconds", type=float)
            sub.add_argument("--retire-after-seconds", type=float)
            sub.add_argument(
                "--anonymous-apps",
                action="store_true",
                default=None,
                help="show apps to anonymous callers (default: strict, as recent CG3)",
            )
            sub.add_argument(
                "--download-redirect",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="downloads answer 302 to an object store (default: on for cg3)",
            )
        else:
            sub.add_argument(
                "--flavour",
                choices=["spec", "starter-kit", "dnastack-cromwell", "dnastack-workbench"],
            )
            sub.add_argument(
                "--token", action="append", dest="tokens", help="accepted bearer token"
            )
            sub.add_argument(
                "--client",
                action="append",
                dest="clients",
                help="client_id:client_secret (workbench)",
            )
            sub.add_argument("--namespace")
            sub.add_argument("--queued-seconds", type=float)
            sub.add_argument("--initializing-seconds", type=float)
            sub.add_argument("--task-seconds", type=float)
            sub.add_argument("--preprocessing-seconds", type=float)
            sub.add_argument("--canceling-seconds", type=float)
            sub.add_argument(
                "--last-page-token",
                choices=["null", "empty", "absent"],
                help="spec flavour: next_page_token on the last page (default null)",
            )
    return parser


_FAULT_FIELDS = set(Faults.model_fields)
_TIMING_FIELDS = {
    "queue_seconds",
    "step_seconds",
    "export_seconds",
    "notify_after_seconds",
    "retire_after_seconds",
    "queued_seconds",
    "initializing_seconds",
    "task_seconds",
    "preprocessing_seconds",
    "canceling_seconds",
}


def build_options(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the JSON config and the flags into an options dict (flags win)."""
    options: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    given = {
        k: v
        for k, v in vars(args).items()
        if v is not None and k not in ("kind", "host", "port", "admin_port", "config")
    }
    faults = {k: v for k, v in given.items() if k in _FAULT_FIELDS}
    if "error_statuses" in faults:
        faults["error_statuses"] = [int(s) for s in str(faults["error_statuses"]).split(",")]
    timings = {k: v for k, v in given.items() if k in _TIMING_FIELDS}
    rest = {k: v for k, v in given.items() if k not in _FAULT_FIELDS | _TIMING_FIELDS}
    if "users" in rest:
        rest["users"] = [parse_user(u) for u in rest["users"]]
    if "clients" in rest:
        rest["clients"] = [
            OAuthClient(client_id=c.split(":", 1)[0], client_secret=c.split(":", 1)[1])
            for c in rest["clients"]
        ]
    preset = rest.pop("preset", None)
    if preset:
        rest.setdefault("panels", preset_panels(preset))
        rest.setdefault("app_ids", PRESETS[preset][1])
    options |= rest
    options["faults"] = {**options.get("faults", {}), **faults}
    options["timings"] = {**options.get("timings", {}), **timings}
    return options


def build_simulator(args: argparse.Namespace) -> Simulator:
    options = build_options(args)
    if args.kind == "michigan":
        return build_cloudgene(CloudgeneOptions.model_validate(options))
    return build_wes(WesOptions.model_validate(options))


async def _serve(args: argparse.Namespace) -> None:
    simulator = build_simulator(args)
    server = SandboxServer(simulator, args.host, args.port, args.admin_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def ready() -> None:
        admin = f", admin port {server.admin_port}" if server.admin_port else ""
        print(
            f"sandbox {simulator.kind} ({simulator.flavour}) on http://{args.host}:{server.port}{admin}",
            flush=True,
        )
        print(json.dumps(simulator.info), flush=True)

    await server.run(stop, ready)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main(sys.argv[1:])
