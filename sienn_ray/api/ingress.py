"""Ray Serve glue: the HTTP ingress deployment and the application builder.

``serve_config.yaml`` points at ``sienn_ray.api.ingress:build_app``. Each
replica reads through its own read-only store and writes through the registry;
with SQLite the database file lives on the head node, so the replicas are
pinned there (``node:__internal_head__``).
"""

from __future__ import annotations

from ray import serve

from ..services.connect import connect_services
from .app import create_app
from .deps import current_services, set_services

app = create_app()
# A sliver of the head node's own resource: places the replica on the head, reserves nothing real.
HEAD_NODE = {"node:__internal_head__": 0.001}


@serve.deployment(ray_actor_options={"num_cpus": 0, "resources": HEAD_NODE}, max_ongoing_requests=200)
@serve.ingress(app)
class ApiIngress:
    """Translates HTTP into service calls (registry writes, store reads, inference calls)."""

    def __init__(self, inference=None):
        set_services(connect_services(inference=inference))

    def check_health(self):
        services = current_services()
        services.reader.ping()
        services.registry.ping().result(timeout=30)


def build_app(args: dict | None = None):
    """Application graph: API ingress -> inference deployment."""
    from ..inference.deployment import InferenceDeployment

    args = args or {}
    inference = InferenceDeployment.bind(**args.get("inference", {}))
    return ApiIngress.bind(inference)
