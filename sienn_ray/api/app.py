"""The FastAPI application: routers by resource plus the one error table."""

from __future__ import annotations

from fastapi import FastAPI

from .console import install_console
from .errors import install_error_handlers
from .openapi import exact_openapi
from .routes import (
    datasets, evaluation, exports, health, inference, jobs, models, openai_compat, openai_files, openai_fine_tuning,
)

API_VERSION = "0.1.0"


def create_app() -> FastAPI:
    app = FastAPI(
        title="sienn-ray",
        version=API_VERSION,
        description="LoRA fine-tuning on Ray: datasets, training jobs, inference and export.",
        docs_url=None, redoc_url=None,  # install_console serves /docs from vendored files, not a CDN
    )
    install_error_handlers(app)
    # evaluation before jobs: /api/jobs/compare must not be taken for the job id "compare".
    for module in (health, models, datasets, evaluation, jobs, inference, openai_compat, openai_files,
                   openai_fine_tuning, exports):
        app.include_router(module.router)
    install_console(app)
    exact_openapi(app)
    return app
