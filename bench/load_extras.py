"""The parts of bench/api_load.py around wrk: the back-pressure check and the py-spy breakdown."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

# Where a sampled stack spends its time, by the file of a frame (first match wins for "self" time).
CATEGORIES = (
    ("logging (Serve access logs)", ("/logging/", "logging_utils.py")),
    ("metrics (Serve/Ray counters)", ("metrics", "opentelemetry", "prometheus")),
    ("our code (sienn_ray)", ("sienn_ray/",)),
    ("sqlite / sqlalchemy", ("sqlalchemy/", "sqlite3")),
    ("pydantic", ("pydantic",)),
    ("json", ("/json/",)),
    ("fastapi / starlette", ("fastapi/", "starlette/")),
    ("uvicorn / http parsing", ("uvicorn/", "httptools", "h11/")),
    ("Serve proxy, router, replica", ("ray/serve/",)),
    ("Ray core (actor calls, object refs)", ("ray/_raylet", "ray/_private/", "ray/actor.py", "ray/remote_function",
                                             "grpc", "ray/util/")),
    ("asyncio event loop", ("asyncio/", "uvloop")),
)


def serve_pids() -> dict[str, int]:
    """The pids of the Serve HTTP proxy (and its HAProxy), and of the API ingress replica of the running app."""
    import ray
    from ray.util.state import list_actors

    pids = {}
    alive = list_actors(address=ray.get_runtime_context().gcs_address, filters=[("state", "=", "ALIVE")], limit=1000)
    for actor in alive:
        if actor.class_name == "ProxyActor":
            pids["proxy"] = actor.pid
        elif actor.class_name.endswith("ApiIngress") and actor.class_name.startswith("ServeReplica:sienn:"):
            pids["ingress"] = actor.pid
    # SIENN_SERVE_INGRESS=haproxy: the HAProxy process the proxy actor runs answers the HTTP port.
    for child in psutil.Process(pids["proxy"]).children(recursive=True) if "proxy" in pids else []:
        if child.name() == "haproxy":
            pids["haproxy"] = child.pid
    return pids


def with_cpu(pids: dict[str, int], run: Callable[[], dict]) -> dict:
    """``run()`` (a wrk phase) plus each process's CPU milliseconds per answered request: what a request
    costs where, independent of how loaded the shared machine is."""
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    before = {name: sum(proc.cpu_times()[:2]) for name, proc in procs.items()}
    result = run()
    used = {name: sum(proc.cpu_times()[:2]) - before[name] for name, proc in procs.items()}
    result["cpu_ms_per_request"] = {name: round(1000 * seconds / max(result["requests"], 1), 3)
                                    for name, seconds in used.items()}
    return result


def profile_pids(pids: dict[str, int], seconds: int, rate: int = 200) -> dict:
    """py-spy every pid at once for ``seconds``; per process: CPU share of each category and top functions."""
    folder = Path(tempfile.mkdtemp(prefix="sienn-pyspy-"))
    venv_spy = Path(sys.executable).parent / "py-spy"
    spy = str(venv_spy) if venv_spy.exists() else (shutil.which("py-spy") or "py-spy")
    procs = {name: subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(seconds), "-r", str(rate),
                                     "--format", "raw", "--nonblocking", "-o", str(folder / f"{name}.txt")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for name, pid in pids.items()}
    out = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=seconds + 120)
        path = folder / f"{name}.txt"
        out[name] = breakdown(path.read_text()) if path.exists() else {"error": err.decode()[-500:]}
    return out


def breakdown(collapsed: str, top: int = 12) -> dict:
    """Shares of py-spy's collapsed stacks: inclusive (stack holds the category) and self (leaf frame's)."""
    inclusive, leaf_cat, leaf_fn, total = Counter(), Counter(), Counter(), 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        seen = {category(f) for f in frames}
        for cat in seen - {None}:
            inclusive[cat] += n
        leaf = frames[-1]
        leaf_cat[category(leaf) or "other (C, stdlib)"] += n
        leaf_fn[leaf] += n

    def shares(counter: Counter) -> dict:
        return {k: round(100 * v / max(total, 1), 1) for k, v in counter.most_common()}

    return {"samples": total, "inclusive_pct": shares(inclusive), "self_pct": shares(leaf_cat),
            "top_self_functions_pct": dict(list(shares(leaf_fn).items())[:top])}


def category(frame: str) -> str | None:
    for name, markers in CATEGORIES:
        if any(m in frame for m in markers):
            return name
    return None


def backpressure_check(api: str, extra: int = 24, new_tokens: int = 900) -> dict:
    """Fill the real inference queue (its capacity plus ``extra`` long requests at once): the requests
    past capacity must be refused with 503 + Retry-After before any admitted one has finished."""
    from sienn_ray.inference.deployment import MAX_ONGOING_REQUESTS, MAX_QUEUED_REQUESTS

    body = {"model_name": "sienn-tiny-gpt2", "template": "raw", "prompt": "Once", "temperature": 0,
            "max_length": new_tokens}
    count = MAX_ONGOING_REQUESTS + MAX_QUEUED_REQUESTS + extra
    return asyncio.run(_flood(f"{api}/api/test-model", body, count))


async def _flood(url: str, body: dict, count: int) -> dict:
    refused: list[tuple[float, httpx.Response]] = []
    served: list[float] = []
    other: list[int] = []  # anything but 503 or 200 (a 429 means the bench's rate limits were too low)
    limits = httpx.Limits(max_connections=count + 8, max_keepalive_connections=count + 8)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        started = time.perf_counter()

        async def post() -> None:
            resp = await client.post(url, json=body)
            took = time.perf_counter() - started
            if resp.status_code == 503:
                refused.append((took, resp))
            elif resp.status_code == 200:
                served.append(took)
            else:
                other.append(resp.status_code)

        tasks = [asyncio.create_task(post()) for _ in range(count)]
        deadline = started + 120
        while not refused and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # let the rest of the refusals arrive
        first_served = min(served) if served else None
        for task in tasks:  # the admitted ones: cancelled (the engine stops decoding for a gone client)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    refusal_s = [t for t, _ in refused]
    good = [r for _, r in refused if r.headers.get("Retry-After") and r.json().get("error_code") == "SERVICE_OVERLOADED"]
    return {
        "requests": count, "refused_503": len(refused), "refused_with_retry_after_and_code": len(good),
        "slowest_refusal_s": round(max(refusal_s), 2) if refusal_s else None,
        "first_admitted_done_s": round(first_served, 2) if first_served else None,
        "retry_after": sorted({r.headers.get("Retry-After") for _, r in refused}), "other_statuses": other,
        "ok": bool(refused) and len(good) == len(refused) and not other
        and (first_served is None or max(refusal_s) < first_served),
    }
