"""The FastAPI application: routers by resource, the one error table, and the security layer."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .. import __version__
from ..auth.config import SecurityConfig
from ..auth.web import parse_list
from ..settings import get_settings
from .console import install_console
from .errors import install_error_handlers
from .openapi import exact_openapi
from .routes import (
    audit, datasets, evaluation, exports, health, inference, jobs, models, openai_compat, openai_files,
    openai_fine_tuning,
)
from .security import SecurityMiddleware

# Headers a page on an allowed origin may send and read (CORS, only when SIENN_ALLOWED_ORIGINS is set).
CORS_REQUEST_HEADERS = ["Authorization", "X-API-Key", "Content-Type"]
CORS_EXPOSED_HEADERS = ["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]


def create_app(security: SecurityConfig | None = None) -> FastAPI:
    """The app; ``security`` None: read from the settings where the app first serves (a Serve replica)."""
    settings = get_settings()
    app = FastAPI(
        title="sienn-ray",
        version=__version__,
        description="LoRA fine-tuning on Ray: datasets, training jobs, inference and export.",
        docs_url=None, redoc_url=None,  # install_console serves /docs from vendored files, not a CDN
    )
    install_error_handlers(app)
    # Each request is matched against the routes in order (by FastAPI, and again by Serve for its
    # metrics), so the polled ones come first: job status (each route tried before it cost a status
    # poll about 1.5 us in-process, twice in a replica), /health (load balancers), then job lists.
    # Evaluation before jobs: /api/jobs/compare must not be taken for the job id "compare"
    # (tests/api/test_route_order.py checks that no route shadows a later one).
    app.include_router(jobs.polled_router)
    for module in (health, evaluation, jobs, models, datasets, inference, openai_compat, openai_files,
                   openai_fine_tuning, exports, audit):
        app.include_router(module.router)
    install_console(app)
    exact_openapi(app, security)
    app.add_middleware(SecurityMiddleware, config=security)
    origins = parse_list(settings.allowed_origins)
    if origins:  # CORS is off unless origins are configured
        app.add_middleware(CORSMiddleware, allow_origins=sorted(origins), allow_methods=["*"],
                           allow_headers=CORS_REQUEST_HEADERS, expose_headers=CORS_EXPOSED_HEADERS)
    return app
