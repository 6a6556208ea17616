"""Base models that can be fine-tuned now."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from ...models.resolve import ResolvedModel, list_models
from ...settings import get_settings

router = APIRouter(tags=["models"])


class ModelList(BaseModel):
    models: list[ResolvedModel]
    default: str


@router.get("/api/models", response_model=ModelList)
async def base_models():
    """Base models usable now, with architecture, parameter count and the default."""
    return ModelList(models=await run_in_threadpool(list_models), default=get_settings().default_model)
