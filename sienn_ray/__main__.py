"""Command line: python -m sienn_ray up | down | status | env | train | keys (thin; the work is in the modules)."""

from __future__ import annotations

import argparse
import os
import sys

from .cli import keys as keys_cli
from .settings import apply_ray_env


def main(argv: list[str] | None = None) -> int:
    apply_ray_env()
    parser = argparse.ArgumentParser(prog="python -m sienn_ray", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start a local Ray head and deploy the API (make up)")
    sub.add_parser("down", help="stop what `up` started (make down)")
    sub.add_parser("status", help="is this SIENN_HOME's stack up: URLs and deployment states (make status)")
    sub.add_parser("env", help='shell lines for the ray/serve CLIs: eval "$(.venv/bin/python -m sienn_ray env)"')
    train = sub.add_parser("train", help="run a LoRA fine-tuning job through the job registry")
    train.add_argument("--dataset", required=True, help="a dataset file (CSV/JSON/JSONL) or an uploaded dataset id")
    train.add_argument("--model", default=None, help="base model name or local directory (default: embedded)")
    train.add_argument("--config", default=None, help="YAML/JSON file with the training config (API schema)")
    train.add_argument("--address", default=None,
                       help="Ray address (default: RAY_ADDRESS, else this SIENN_HOME's `make up` head, else auto)")
    train.add_argument("--no-wait", action="store_true", help="queue the job and return its id")
    keys_cli.add_parser(sub)
    args = parser.parse_args(argv)

    if args.command == "up":
        from .ops.cluster import up

        return up()
    if args.command == "down":
        from .ops.cluster import down

        return down()
    if args.command == "status":
        from .ops.status import status

        return status()
    if args.command == "env":
        from .ops.shell_env import print_env

        return print_env()
    if args.address is None and not os.environ.get("RAY_ADDRESS"):
        # With two stacks on one machine, "auto" would pick whichever head started last.
        from .ops.head import running_record
        from .settings import get_settings

        rec = running_record(get_settings().run_dir)
        args.address = rec.ray_address if rec else None
    if args.command == "keys":
        return keys_cli.run_keys(args)
    from .cli.train import run_train

    return run_train(args)


if __name__ == "__main__":
    sys.exit(main())
