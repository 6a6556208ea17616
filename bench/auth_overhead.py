"""What API keys and rate limits add to a request: the same app with security off and on, same run.

    python bench/auth_overhead.py --requests 500 [--ray]

Serves the real app (``create_app``) three times under uvicorn on localhost, over
one in-process registry and SQLite store in a temporary folder: ``off`` (no key,
no rate limit), ``auth`` (a key per request, checked through the key cache) and
``auth+limits`` (plus a moving-window rate limit, in a ``limits`` MemoryStorage
in the process, or with ``--ray`` in the shared counter actor the Serve replicas
use, on a local Ray started here). Each round sends one keep-alive
``GET /api/datasets?limit=1`` to each app in turn, so load on a shared machine
hits all three alike. Prints one JSON object: median and p95 latency per mode
and each mode's median minus ``off``'s (the added latency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import uvicorn

from sienn_ray.auth.config import SecurityConfig
from sienn_ray.jobs.queue import Capacity, NodeShape
from sienn_ray.schemas.auth import Quota
from sienn_ray.settings import apply_ray_env, get_settings

OFF = SecurityConfig(auth_required=False, rate_limits=None, rate_limit_storage=None, quota_defaults=Quota(),
                     allowed_origins=frozenset(), allowed_hosts=frozenset(), loopback_listener=True, key_cache_s=5.0)
NO_LIMIT = {"standard": "100000000/minute", "training": "100000000/minute", "inference": "100000000/minute"}


class IdleCluster:
    """A one-node cluster that launches nothing: the bench submits no job."""

    def capacity(self) -> Capacity:
        return Capacity([NodeShape({"CPU": 1, "GPU": 0}, 1)])

    def free(self) -> dict:
        return {"CPU": 1, "GPU": 0}

    def launch_runner(self, job_id: str, token: int, holder: str) -> None:
        raise AssertionError("the bench starts no job")

    def stop_runner(self, holder: str) -> None:
        raise AssertionError("the bench starts no job")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(config: SecurityConfig) -> tuple[uvicorn.Server, str]:
    from sienn_ray.api.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per mode")
    parser.add_argument("--ray", action="store_true", help="count in the shared Ray actor (starts a local Ray)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SIENN_HOME"] = tmp  # this run's own storage root (and Ray token, with --ray)
        apply_ray_env()  # before anything imports ray, which reads RAY_AUTH_MODE once
        from sienn_ray.api import deps
        from sienn_ray.jobs.client import RegistryClient
        from sienn_ray.jobs.core import RegistryCore
        from sienn_ray.services import keys
        from sienn_ray.services.context import Services
        from sienn_ray.store import ReadStore, Store

        if args.ray:
            import ray

            ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
                     namespace=get_settings().ray_namespace)
        url = f"sqlite:///{Path(tmp) / 'db.sqlite'}"
        services = Services(registry=RegistryClient.in_process(RegistryCore(Store(url), IdleCluster())),
                            reader=ReadStore(url))
        deps.set_services(services)
        _, key = asyncio.run(keys.create_key(services, "bench"))
        auth = replace(OFF, auth_required=True)
        limits = replace(auth, rate_limits=NO_LIMIT, rate_limit_storage=None if args.ray else "memory://")
        modes = {"off": OFF, "auth": auth, "auth+limits": limits}
        servers = {name: _serve(config) for name, config in modes.items()}
        headers = {"Authorization": f"Bearer {key}"}
        times: dict[str, list[float]] = {name: [] for name in modes}
        with httpx.Client(timeout=60, headers=headers) as client:
            for round_ in range(args.requests + 20):
                for name, (_, base) in servers.items():
                    start = time.perf_counter()
                    resp = client.get(f"{base}/api/datasets", params={"limit": 1})
                    elapsed = time.perf_counter() - start
                    resp.raise_for_status()
                    if round_ >= 20:  # warm-up: connections, the key's first scrypt check, the actor lookup
                        times[name].append(elapsed * 1000)
        for server, _ in servers.values():
            server.should_exit = True
        if args.ray:
            ray.shutdown()
    med = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({
        "requests_per_mode": args.requests,
        "counter_store": "ray actor" if args.ray else "in-process memory",
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "p95_ms": {k: round(statistics.quantiles(v, n=20)[-1], 3) for k, v in times.items()},
        "added_median_ms": {k: round(med[k] - med["off"], 3) for k in modes if k != "off"},
    }, indent=2))


if __name__ == "__main__":
    main()
