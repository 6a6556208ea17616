"""Load figures of the HTTP API: wrk against the real Serve app while a job trains and uploads run.

    python bench/api_load.py --seconds 30 --connections 200 [--ingress haproxy|proxy] [--profile]

Starts its own local Ray (4 CPUs) with a fresh storage root and the real Serve app
(API ingress + inference), uploads the demo dataset and starts a long job on it.
While that job trains and a background thread keeps uploading datasets, Debian's
``wrk`` (a second process, loopback only, bounded by ``--seconds`` and a 2 s
timeout) drives ``/health``, ``/api/training-status/{id}``, ``/api/jobs`` and the
two polled together, each for ``--seconds`` at ``--connections``, in ``--rounds``
slices taken in turns (so no phase alone meets the job's checkpoint or an
upload's validation) and merged per phase. The peers: a
plain FastAPI app under plain uvicorn (bench/plain_app.py, the same FastAPI) and
our own app under plain uvicorn, so the Serve tier's share is visible. Then the
inference queue is filled and ``/api/test-model`` must answer 503 + Retry-After at
once. ``--profile`` samples the Serve proxy and the ingress replica with py-spy
during a second run of the first phase and prints where their CPU time goes. ``--ingress``
picks who answers the HTTP port (SIENN_SERVE_INGRESS): HAProxy straight to the
replica (the default) or Serve's Python proxy actor, to compare the two. Rate
limits stay on, at a limit the load cannot reach (capacity is measured).

Prints one JSON object. Figures are from a shared, loaded 2-core machine: compare
the ratios within one run, not absolute rates across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from load_extras import backpressure_check, profile_pids, serve_pids, with_cpu  # noqa: E402
from wrk_run import merge_runs, run_wrk, wrk_available  # noqa: E402

# Long enough to train through every phase (the summary checks it still trains); cancelled at the end.
# The demo's 30 rows, each 10 times (numbered): 30 rows alone made 5-step epochs that a fast machine got
# through (5,000 steps) before the last phase.
JOB_CONFIG = {"num_epochs": 1000, "batch_size": 4, "max_length": 64, "lora_r": 4, "lora_alpha": 8,
              "learning_rate": 0.001, "checkpoint_every_steps": 500}
JOB_DATA_COPIES = 10
UPLOAD_ROWS = 20_000  # ~1.5 MB per upload


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout_s: float = 180) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not up within {timeout_s} s")


class Uploader(threading.Thread):
    """Uploads a fresh ~1.5 MB dataset after another until stopped (each one is new bytes: a full ingest)."""

    def __init__(self, api: str):
        super().__init__(daemon=True, name="uploader")
        self.api, self.stop, self.statuses, self.seconds = api, threading.Event(), [], []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            rows = "".join(json.dumps({"instruction": f"Upload {n} row {i}", "output": f"answer {i}"}) + "\n"
                           for i in range(UPLOAD_ROWS))
            started = time.perf_counter()
            try:
                resp = httpx.post(f"{self.api}/api/upload-dataset", files={"file": (f"load-{n}.jsonl", rows)},
                                  timeout=120)
                self.statuses.append(resp.status_code)
            except httpx.HTTPError as err:
                self.statuses.append(type(err).__name__)
            self.seconds.append(time.perf_counter() - started)

    def summary(self) -> dict:
        ok = sum(s == 200 for s in self.statuses)
        return {"uploads": len(self.statuses), "ok": ok, "failed": [s for s in self.statuses if s != 200],
                "mean_s": round(sum(self.seconds) / max(len(self.seconds), 1), 2)}


def start_job(api: str) -> str:
    from sienn_ray.data.demo import demo_records

    rows = [r | {"instruction": f"{r['instruction']} (#{copy})"}
            for copy in range(JOB_DATA_COPIES) for r in demo_records()]
    data = "".join(json.dumps(r) + "\n" for r in rows)
    dataset = httpx.post(f"{api}/api/upload-dataset", files={"file": ("demo.jsonl", data)}, timeout=120).json()
    resp = httpx.post(f"{api}/api/start-finetuning", timeout=120,
                      json={"dataset_id": dataset["dataset_id"], "config": JOB_CONFIG})
    if resp.status_code != 200:
        raise RuntimeError(f"could not start the load job: {resp.status_code} {resp.text}")
    job = resp.json()
    deadline = time.time() + 300
    while time.time() < deadline:
        status = httpx.get(f"{api}/api/training-status/{job['job_id']}", timeout=30).json()
        if status["status"] == "running" and status["step"] > 0:
            return job["job_id"]
        if status["status"] in ("failed", "cancelled", "completed"):
            raise RuntimeError(f"load job ended before the load: {status}")
        time.sleep(1)
    raise RuntimeError("load job did not start training within 300 s")


def peer(app: str, factory: bool, seconds: int, connections: int) -> dict:
    """``/health`` of an app under plain uvicorn in its own process (same venv, same FastAPI)."""
    port = free_port()
    cmd = [sys.executable, str(BENCH / "plain_app.py"), "--port", str(port), "--app", app]
    proc = subprocess.Popen(cmd + (["--factory"] if factory else []), cwd=ROOT,
                            env=os.environ | {"PYTHONPATH": str(ROOT)})
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 60)
        return merge_runs([with_cpu({"uvicorn": proc.pid}, lambda: run_wrk(
            f"http://127.0.0.1:{port}", ["/health"], connections=connections, duration_s=seconds))])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def ratio(a: dict, b: dict) -> float:
    return round(a["requests_per_s"] / max(b["requests_per_s"], 1e-9), 2)


def measure(api: str, job_id: str, args) -> dict:
    status_path, list_path = f"/api/training-status/{job_id}", "/api/jobs?limit=50"
    load = {"connections": args.connections, "duration_s": args.seconds}
    uploader = Uploader(api)
    if not args.no_upload:
        uploader.start()
    try:
        paths = {"health": ["/health"], "status": [status_path], "list_jobs": [list_path],
                 "status_and_list": [status_path, list_path]}
        pids = serve_pids()
        # Untimed warm-up: connections opened, worker threads and caches filled, the job past its start.
        warmup = merge_runs([run_wrk(api, ["/health", status_path], connections=args.connections, duration_s=5)])
        phases = interleaved(api, paths, args.phases.split(","), pids, args)
        profile = None
        if args.profile:
            first = args.phases.split(",")[0]  # the phase profiled again: the first one asked for
            sampler = threading.Thread(target=lambda: phases.__setitem__(f"{first}_profiled", merge_runs([run_wrk(
                api, paths[first], **load)])))
            sampler.start()
            profile = profile_pids({k: v for k, v in pids.items() if k != "haproxy"}, max(args.seconds - 5, 5))
            sampler.join()
    finally:
        uploader.stop.set()
        if uploader.is_alive():
            uploader.join(timeout=180)
    job = httpx.get(f"{api}{status_path}", timeout=30).json()
    return {"warmup": warmup, "phases": phases, "uploads_during_load": uploader.summary(), "profile": profile,
            "job_during_load": {"status": job["status"], "step": job["step"]}}


def interleaved(api: str, paths: dict[str, list[str]], names: list[str], pids: dict[str, int], args) -> dict:
    """Each phase's ``--seconds`` in ``--rounds`` slices, the phases taking turns (reversed every other
    round), merged per phase: the phases then share the machine's slow and fast moments (the training
    job's steps, evaluation and checkpoints; an upload's validation) instead of each meeting its own."""
    slices: dict[str, list[dict]] = {name: [] for name in names}
    seconds = max(1, round(args.seconds / args.rounds))
    for turn in range(args.rounds):
        for name in names if turn % 2 == 0 else names[::-1]:
            slices[name].append(with_cpu(pids, lambda: run_wrk(api, paths[name], connections=args.connections,
                                                                duration_s=seconds)))
    return {name: merge_runs(runs) for name, runs in slices.items()}


def summarize(result: dict) -> dict:
    """Ratios between the phases and the peers, and the issue's goals met or not."""
    phases = result["phases"]
    ratios = {
        "status_vs_health": ratio(phases["status"], phases["health"]),
        "list_vs_health": ratio(phases["list_jobs"], phases["health"]),
        "status_and_list_vs_health": ratio(phases["status_and_list"], phases["health"]),
        "serve_health_vs_plain_uvicorn": ratio(phases["health"], result["plain_uvicorn_health"]),
        "our_app_plain_vs_plain_uvicorn": ratio(result["our_app_plain_uvicorn_health"],
                                                result["plain_uvicorn_health"]),
        "status_vs_health_by_round": [ratio(s, h) for s, h in zip(phases["status"]["runs"], phases["health"]["runs"])],
    }
    polled = [phases[k] for k in ("status", "list_jobs", "status_and_list")]
    goals = {
        "no_errors_or_timeouts": all(p["error_total"] == 0 for p in polled),
        "job_trained_through_the_load": result["job_during_load"]["status"] == "running",
        "status_at_least_0.8x_health": ratios["status_vs_health"] >= 0.8,
        "backpressure_503_at_once": result["backpressure"]["ok"],
    }
    return {"ratios": ratios, "goals": goals}


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3,
                        help="slices each phase's --seconds into this many turns, the phases alternating")
    parser.add_argument("--profile", action="store_true", help="py-spy the Serve proxy and ingress replica")
    parser.add_argument("--phases", default="health,status,list_jobs,status_and_list",
                        help="comma-separated subset of the wrk phases")
    parser.add_argument("--quick", action="store_true", help="skip the uvicorn peers and the back-pressure check")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment for the cluster's processes (e.g. a Serve flag to compare)")
    parser.add_argument("--no-access-log", action="store_true",
                        help="turn the replicas' per-request access log off (on as shipped), to compare")
    parser.add_argument("--no-upload", action="store_true", help="no uploads during the load (to compare)")
    parser.add_argument("--ingress", choices=("haproxy", "proxy"), default="haproxy",
                        help="SIENN_SERVE_INGRESS: Serve's HAProxy ingress or its Python proxy actor")
    args = parser.parse_args()
    os.environ.update(dict(item.split("=", 1) for item in args.env))
    os.environ["SIENN_SERVE_INGRESS"] = args.ingress
    # Capacity, not the per-client limit, is measured: the limiter still counts every request (its cost
    # stays in the figures) but the 100/minute default would refuse all but the first seconds.
    os.environ.setdefault("SIENN_RATE_LIMITS", ",".join(f"{c}=100000000/minute" for c in ("standard", "training",
                                                                                          "inference")))
    if not wrk_available():
        raise SystemExit("wrk is not installed (Debian package wrk)")
    home = tempfile.mkdtemp(prefix="sienn-bench-load-")
    os.environ.update(SIENN_HOME=home, SIENN_RAY_NAMESPACE="sienn-bench-load", SIENN_DEFAULT_MODEL="sienn-tiny-gpt2",
                      HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")

    from sienn_ray.settings import apply_ray_env, get_settings, reset_settings

    reset_settings()
    apply_ray_env()  # before Ray is imported: it reads its auth mode once

    import ray
    from ray import serve

    from sienn_ray.api.ingress import build_app
    from sienn_ray.models.embedded import ensure_toy_models

    ensure_toy_models()  # the toy bases are enough (the real default would be converted first)
    ray.init(address="local", num_cpus=4, namespace=get_settings().ray_namespace, include_dashboard=True,
             log_to_driver=False, configure_logging=False)
    try:
        port = free_port()
        # The app's logging config is what its replicas use (serve.start's covers the controller and proxy).
        logging = {"enable_access_log": False} if args.no_access_log else None
        serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=logging)
        serve.run(build_app({}), name="sienn", route_prefix="/", logging_config=logging)
        api = f"http://127.0.0.1:{port}"
        wait_http(f"{api}/health")
        job_id = start_job(api)
        result = measure(api, job_id, args) | {"ingress": args.ingress, "rate_limits": os.environ["SIENN_RATE_LIMITS"],
                                               "access_log": not args.no_access_log}
        if args.quick:
            return result
        result["plain_uvicorn_health"] = peer("bench.plain_app:app", False, args.seconds, args.connections)
        result["our_app_plain_uvicorn_health"] = peer("sienn_ray.api.app:create_app", True, args.seconds,
                                                      args.connections)
        result["backpressure"] = backpressure_check(api)
        httpx.post(f"{api}/api/jobs/{job_id}/cancel", timeout=60)
        return result | summarize(result)
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(home, ignore_errors=True)  # its uploads are hundreds of MB after a 30 s run


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
