"""Ray glue: the services of a process attached to the cluster (an API replica, the CLI)."""

from __future__ import annotations

from functools import partial

from ..export.ray_task import launch_export
from ..jobs.calibration import launch_calibration
from ..jobs.registry import connect_registry
from ..settings import get_settings
from ..store import ReadStore
from .context import Services


def connect_services(namespace: str | None = None, inference=None) -> Services:
    """Attach to (or create) the namespace's registry, and open a read-only store of our own."""
    settings = get_settings()
    namespace = namespace or settings.ray_namespace
    registry = connect_registry(namespace)
    registry.ping().result(timeout=120)  # the registry creates the database's tables before anyone reads
    return Services(registry=registry, reader=ReadStore(settings.db_url, memo=True),
                    launch_export=partial(launch_export, namespace=namespace),
                    launch_calibration=launch_calibration, inference=inference)
