"""The JobRegistry actor: one ``RegistryCore`` in a named, detached actor that Ray restarts if it dies.

Its methods are ``RegistryCore``'s, run one at a time (``max_concurrency=1``),
so the core needs no locks. A thread in the actor calls its own ``tick`` every
second through the actor handle, so the clock's work (leases, stop deadlines,
launching queued jobs) is serialized with every other call too, and keeps
running with no API or CLI attached.
"""

from __future__ import annotations

import logging
import threading
import time

import ray

from ..settings import get_settings
from ..store import Store
from .client import REGISTRY_NAME, RegistryClient
from .cluster import RayCluster, head_node_strategy
from .core import RegistryCore
from .policy import ControlPolicy

log = logging.getLogger(__name__)

TICK_S = 1.0


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1)
class JobRegistry(RegistryCore):
    def __init__(self, db_url: str, namespace: str):
        settings = get_settings()
        policy = ControlPolicy.from_settings(settings)
        cluster = RayCluster(namespace, policy.heartbeat_s, settings.autoscaler_config)
        super().__init__(Store(db_url), cluster, policy)
        threading.Thread(target=_tick_forever, args=(ray.get_runtime_context().current_actor,), daemon=True,
                         name="registry-clock").start()


def _tick_forever(handle) -> None:
    while True:
        time.sleep(TICK_S)
        try:
            for action in ray.get(handle.tick.remote(), timeout=120):
                log.warning("registry: %s", action)
        except Exception:  # noqa: BLE001 - keep ticking; a slow or failed tick is retried next second
            log.warning("registry tick failed", exc_info=True)


def connect_registry(namespace: str | None = None) -> RegistryClient:
    """The client of this namespace's registry, creating the actor on first use."""
    namespace = namespace or get_settings().ray_namespace
    try:
        handle = ray.get_actor(REGISTRY_NAME, namespace=namespace)
    except ValueError:
        handle = JobRegistry.options(
            name=REGISTRY_NAME, namespace=namespace, lifetime="detached", get_if_exists=True,
            scheduling_strategy=head_node_strategy(),
        ).remote(get_settings().db_url, namespace)
    return RegistryClient.for_actor(namespace, handle)
