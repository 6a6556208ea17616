"""`make up` / `make down`: a local Ray head with the Serve app, started and stopped exactly.

The head and its ports are in ``head.py``, the Serve app in ``serve_app.py``; the
stack's record lives in ``$SIENN_HOME/run``, so ``down`` stops this stack and
nothing else on the machine.
"""

from __future__ import annotations

import fcntl
import time

from ..settings import apply_ray_env, get_settings
from . import head, serve_app

UP_TIMEOUT_S = 600


def is_up(rec: head.HeadRecord) -> bool:
    """Every deployment running and GET /health healthy."""
    return serve_app.app_ready(serve_app.deployment_states(rec)) and serve_app.api_healthy(rec)


def wait_for_app(rec: head.HeadRecord) -> None:
    deadline = time.time() + UP_TIMEOUT_S
    last = None
    while time.time() < deadline:
        states = serve_app.deployment_states(rec)
        if states != last:
            print("deployments:", states or "starting", flush=True)
            last = states
        if serve_app.app_failed(states):
            raise SystemExit(f"Serve deployment failed: {states}; see {get_settings().run_dir} and the Ray logs")
        if is_up(rec):
            return
        time.sleep(2)
    raise SystemExit(f"Serve app not healthy within {UP_TIMEOUT_S} s: {serve_app.deployment_states(rec)}")


def up() -> int:
    apply_ray_env()
    settings = get_settings()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    lock = open(settings.run_dir / "up.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("make up is already running in another shell; nothing to do.")
        return 0
    rec = head.running_record(settings.run_dir)
    if rec and is_up(rec):
        print(f"sienn-ray is already up: API {rec.api_url} (pid {rec.pid}); nothing to do.")
        return 0
    from ..models.embedded import ensure_embedded_models

    for name, path in ensure_embedded_models().items():
        print(f"base model {name}: {path}")
    if rec is None:
        rec = head.start_head(settings, serve_app.dashboard_up)
    print(f"Ray head running (pid {rec.pid}), dashboard {rec.dashboard_url}", flush=True)
    serve_app.deploy(rec, settings.run_dir)
    wait_for_app(rec)
    print(f"sienn-ray is up: API {rec.api_url}  docs {rec.api_url}/docs  storage {settings.home}")
    return 0


def down() -> int:
    apply_ray_env()
    run_dir = get_settings().run_dir
    rec = head.running_record(run_dir)
    if rec is None:
        stale = head.read_record(run_dir)
        leftovers = head.stack_processes(stale) if stale else []
        if not leftovers:
            head.forget_record(run_dir)
            print("Nothing to stop: no Ray head started by make up is running.")
            return 0
        rec = stale
    else:
        serve_app.shutdown(rec)
    head.stop_head(rec)
    head.forget_record(run_dir)
    print("sienn-ray stopped (Serve app and the Ray head started by make up).")
    return 0
