"""Ray Serve glue: the HTTP ingress deployment and the application builder.

``serve_config.yaml`` points at ``sienn_ray.api.ingress:build_app``.
"""

from __future__ import annotations

import logging
import threading
import time

from ray import serve

from ..jobs.client import RegistryClient
from .app import create_app
from .deps import Services, get_services, set_services

app = create_app()
# How often the API asks the registry to check that every active job still has its runner.
WATCH_RUNNERS_S = 20.0
log = logging.getLogger(__name__)


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=200)
@serve.ingress(app)
class ApiIngress:
    """Translates HTTP into registry calls, runner launches and inference calls."""

    def __init__(self, inference=None):
        registry = RegistryClient()
        registry.call_sync("ping", timeout=120)  # creates the registry (and reconciles) if needed
        set_services(Services(registry=registry, inference=inference))
        # Measure training throughput once now (cached on disk) so that the first
        # start-finetuning request answers at once with a real estimate.
        threading.Thread(target=_warm_estimates, daemon=True, name="warm-estimates").start()
        threading.Thread(target=_watch_runners, args=(registry,), daemon=True, name="watch-runners").start()

    def check_health(self):
        get_services().registry.call_sync("ping", timeout=30)


def _warm_estimates() -> None:
    from ..models.resolve import list_models
    from ..train.estimate import calibrate

    try:
        for model in list_models():
            if model.source == "embedded":
                calibrate(model.path)
    except Exception:  # noqa: BLE001 - only a warm-up; estimates are computed on demand anyway
        log.warning("throughput warm-up failed", exc_info=True)


def _watch_runners(registry: RegistryClient) -> None:
    """Every so often, have the registry relaunch or fail jobs whose runner died (e.g. with its node)."""
    while True:
        time.sleep(WATCH_RUNNERS_S)
        try:
            for action in registry.call_sync("reconcile", WATCH_RUNNERS_S, timeout=120):
                log.warning("runner watchdog: %s", action)
        except Exception:  # noqa: BLE001 - keep watching; the registry may be restarting
            log.warning("runner watchdog failed", exc_info=True)


def build_app(args: dict | None = None):
    """Application graph: API ingress -> inference deployment."""
    from ..inference.deployment import InferenceDeployment

    args = args or {}
    inference = InferenceDeployment.bind(**args.get("inference", {}))
    return ApiIngress.bind(inference)
