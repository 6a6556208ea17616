"""`python -m sienn_ray keys create|list|revoke`: API keys, through the same registry as everything else.

``create`` prints the new key once (alone on stdout, so ``KEY=$(... keys create ...)``
works; what it is goes to stderr); only its hash is stored. ``list`` reads the
store and never shows a key. Creating and revoking need this stack's Ray head
(the registry is the one writer); ``list`` needs only the storage root.
"""

from __future__ import annotations

import asyncio
import json
import sys

from ..errors import SiennError
from ..services import keys
from ..services.context import Services


def add_parser(sub) -> None:
    parser = sub.add_parser("keys", help="API keys: create (printed once), list, revoke")
    parser.add_argument("--address", default=None,
                        help="Ray address (default: RAY_ADDRESS, else this SIENN_HOME's `make up` head)")
    actions = parser.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="the key's name (letters, digits, . _ -), never reused")
    create.add_argument("--tenant", default=None, help="whose records it sees and makes (default: its name)")
    create.add_argument("--admin", action="store_true", help="sees and manages every tenant, reads the audit trail")
    create.add_argument("--quota", default="", help="overrides, e.g. running_jobs=4,storage_bytes=100GiB "
                                                    "(running_jobs, queued_jobs, cpus_per_job, gpus_per_job, "
                                                    "storage_bytes, max_priority)")
    actions.add_parser("list", help="every key: name, tenant, admin, created, revoked (never the key)")
    revoke = actions.add_parser("revoke", help="revoke a key (refused within SIENN_KEY_CACHE_S seconds)")
    revoke.add_argument("name")


def run_keys(args) -> int:
    try:
        if args.keys_command == "list":
            return _list()
        services = _connect(args.address)
        if args.keys_command == "create":
            info, key = asyncio.run(keys.create_key(services, args.name, tenant=args.tenant, is_admin=args.admin,
                                                    quotas=args.quota))
            print(f"Created API key {info.name!r} (tenant {info.tenant}{', admin' if info.is_admin else ''}). "
                  "It is shown once, below; only its hash is kept.", file=sys.stderr)
            print(key)
            return 0
        info = asyncio.run(keys.revoke_key(services, args.name))
        print(f"Revoked API key {info.name!r} at {info.revoked_at.isoformat()}; API replicas refuse it within "
              "SIENN_KEY_CACHE_S seconds (default 5).")
        return 0
    except SiennError as err:
        print(f"{err.error_code}: {err.detail}", file=sys.stderr)
        return 2


def _list() -> int:
    from ..settings import get_settings
    from ..store import ReadStore

    reader = ReadStore(get_settings().db_url)
    try:
        infos = keys.list_keys(Services(registry=None, reader=reader))
    finally:
        reader.close()
    for info in infos:
        print(json.dumps(info.model_dump(mode="json", exclude_none=True)))
    if not infos:
        print("No API keys yet: `python -m sienn_ray keys create --name admin --admin` makes the first one.",
              file=sys.stderr)
    return 0


def _connect(address: str | None) -> Services:
    import ray

    from ..services.connect import connect_services
    from ..settings import get_settings

    ray.init(address=address or "auto", namespace=get_settings().ray_namespace, log_to_driver=False,
             configure_logging=False)
    return connect_services()
