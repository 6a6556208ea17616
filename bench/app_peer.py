"""Our own FastAPI app under plain uvicorn, reading the bench's database: the API without Ray Serve.

bench/api_load.py serves it with bench/plain_app.py (``--factory``) next to the real
Serve app, so the same routes over the same records are measured with and without
the Serve tier. Reads only: it has no registry (a write would answer 503).
"""

from __future__ import annotations

from sienn_ray.api.app import create_app
from sienn_ray.api.deps import set_services
from sienn_ray.services.context import Services
from sienn_ray.settings import get_settings
from sienn_ray.store import ReadStore


def create_peer_app():
    """The API app over a read-only store of ``SIENN_HOME``'s database."""
    set_services(Services(registry=None, reader=ReadStore(get_settings().db_url)))
    return create_app()
