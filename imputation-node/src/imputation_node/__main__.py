"""``imputation-node``: start the node, generate panels, measure accuracy.

imputation-node serve [--data-dir DIR] [--host H] [--port P] [--public-url URL] ...
imputation-node panel --size ci|demo [--data-dir DIR] [--seed N]
imputation-node accuracy --imputed X.vcf.gz --truth T.vcf.gz --sites S.sites.vcf.gz
imputation-node service-info [--data-dir DIR] ...   (print what serve would publish)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from imputation_node.node import PACKAGE_ROOT, NodeSettings

DEFAULT_DATA_DIR = PACKAGE_ROOT / "var"


def _settings(args: argparse.Namespace) -> NodeSettings:
    data_dir = args.data_dir.resolve()
    local = [Path(d) for d in args.local_input_dir] or [data_dir / "inbox", data_dir / "heldout"]
    return NodeSettings(
        data_dir=data_dir,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        organization_name=args.organization_name,
        organization_url=args.organization_url,
        node_id=args.node_id,
        contact_url=args.contact_url,
        auth_config=args.auth_config,
        auth_instructions_url=args.auth_instructions_url,
        max_threads=args.max_threads,
        max_memory_gb=args.max_memory_gb,
        download_timeout_seconds=args.download_timeout,
        download_deadline_seconds=args.download_deadline,
        max_input_bytes=args.max_input_bytes,
        local_input_dirs=local,
    )


def serve(args: argparse.Namespace) -> None:
    from imputation_node import panel
    from imputation_node.node import prepare, sapporo_environment

    settings = _settings(args)
    if not args.no_ci_panel:
        layout = panel.ensure("ci", settings.data_dir)
        print(f"panel {layout.panel_id}: {layout.panel_dir}", flush=True)
    paths = prepare(settings)
    print(f"WES API:  {settings.base_url}/ga4gh/wes/v1/service-info", flush=True)
    print(f"workflow: {settings.workflow_url}", flush=True)
    env = os.environ | sapporo_environment(settings, paths, os.environ.get("PATH", os.defpath))
    python = sys.executable
    # The server replaces this process, so signals to the node reach it directly.
    os.execve(python, [python, "-m", "imputation_node.server"], env)  # noqa: S606


def make_panel(args: argparse.Namespace) -> None:
    from imputation_node import panel

    seed = panel.DEFAULT_SEED if args.seed is None else args.seed
    layout = panel.generate(args.size, args.data_dir.resolve(), seed)
    print(
        json.dumps(
            {
                "panel": str(layout.panel_dir),
                "target": str(layout.target),
                "truth": str(layout.truth),
            }
        )
    )


def accuracy(args: argparse.Namespace) -> None:
    from imputation_node.accuracy import evaluate

    print(json.dumps(evaluate(args.imputed, args.truth, args.sites), indent=2))


def show_service_info(args: argparse.Namespace) -> None:
    from imputation_node.node import panel_entries, service_info

    settings = _settings(args)
    print(json.dumps(service_info(settings, panel_entries(settings.panels_dir)), indent=2))


def _node_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="panels, runs, config"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1122)
    parser.add_argument(
        "--public-url", default="", help="how clients reach the node (default http://HOST:PORT)"
    )
    parser.add_argument("--organization-name", default="FedImpute imputation node")
    parser.add_argument("--organization-url", default="https://example.org")
    parser.add_argument("--node-id", default="org.fedimpute.imputation-node")
    parser.add_argument("--contact-url", default="", help="default: --organization-url")
    parser.add_argument(
        "--auth-config", type=Path, help="sapporo's auth_config.json: require a token on the API"
    )
    parser.add_argument("--auth-instructions-url", default="", help="default: --organization-url")
    parser.add_argument("--max-threads", type=int, default=2)
    parser.add_argument("--max-memory-gb", type=int, default=8)
    parser.add_argument(
        "--download-timeout",
        type=float,
        default=30.0,
        help="seconds without a byte from an input URL",
    )
    parser.add_argument(
        "--download-deadline", type=float, default=1800.0, help="seconds for one input in all"
    )
    parser.add_argument("--max-input-bytes", type=int, default=10 * 1024**3)
    parser.add_argument(
        "--local-input-dir", action="append", default=[],
        help="a folder whose files runs may name as inputs (default: DATA/inbox and DATA/heldout)",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="imputation-node", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser(
        "serve", help="start the node (generates the CI panel first if missing)"
    )
    _node_flags(serve_parser)
    serve_parser.add_argument(
        "--no-ci-panel", action="store_true", help="do not generate the CI panel"
    )
    serve_parser.set_defaults(handler=serve)
    info_parser = sub.add_parser("service-info", help="print the service-info serve would publish")
    _node_flags(info_parser)
    info_parser.set_defaults(handler=show_service_info)
    panel_parser = sub.add_parser("panel", help="generate a simulated panel and its held-out data")
    panel_parser.add_argument("--size", choices=["ci", "demo"], default="ci")
    panel_parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    panel_parser.add_argument("--seed", type=int, help="default: the panel module's fixed seed")
    panel_parser.set_defaults(handler=make_panel)
    accuracy_parser = sub.add_parser("accuracy", help="r² and DR2 by MAF bin against the truth")
    accuracy_parser.add_argument("--imputed", type=Path, required=True)
    accuracy_parser.add_argument("--truth", type=Path, required=True)
    accuracy_parser.add_argument("--sites", type=Path, required=True, help="the panel's sites file")
    accuracy_parser.set_defaults(handler=accuracy)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
