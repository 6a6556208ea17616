"""`make status`: is this SIENN_HOME's stack up, where are its URLs, what state is each deployment in."""

from __future__ import annotations

from ..settings import apply_ray_env, get_settings
from . import head, serve_app


def status() -> int:
    """Print the stack's state; 0 when it is up (every deployment running, /health healthy), else 1."""
    apply_ray_env()
    settings = get_settings()
    rec = head.running_record(settings.run_dir)
    if rec is None:
        print(f"sienn-ray is down (SIENN_HOME={settings.home}): no Ray head started by make up is running.")
        return 1
    states = serve_app.deployment_states(rec)
    healthy = serve_app.api_healthy(rec)
    up = serve_app.app_ready(states) and healthy
    print(f"sienn-ray is {'up' if up else 'degraded'} (SIENN_HOME={settings.home})")
    print(f"  API        {rec.api_url}  (GET /health: {'healthy' if healthy else 'not answering'})")
    print(f"  docs       {rec.api_url}/docs")
    print(f"  dashboard  {rec.dashboard_url}")
    print(f"  Ray head   pid {rec.pid}, address {rec.ray_address}")
    print("  deployments:" if states else "  deployments: none (Serve app not deployed or dashboard not answering)")
    for name, state in sorted(states.items()):
        print(f"    {name}: {state}")
    return 0 if up else 1
