"""The FastAPI application: routers by resource plus the one error table."""

from __future__ import annotations

from fastapi import FastAPI

from .errors import install_error_handlers
from .openapi import exact_openapi
from .routes import datasets, exports, health, inference, jobs, models, openai_compat

API_VERSION = "0.1.0"


def create_app() -> FastAPI:
    app = FastAPI(
        title="sienn-ray",
        version=API_VERSION,
        description="LoRA fine-tuning on Ray: datasets, training jobs, inference and export.",
    )
    install_error_handlers(app)
    for module in (health, models, datasets, jobs, inference, openai_compat, exports):
        app.include_router(module.router)
    exact_openapi(app)
    return app
