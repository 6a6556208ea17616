"""The OpenAPI document as exact as the app: every status a route can answer, with its error body.

Routes name their error statuses with ``errors(...)``; ``exact_openapi`` drops
FastAPI's automatic 422 (request validation answers 400 here, see ``errors.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

from ..schemas.common import ErrorBody

_WHY = {
    400: "Invalid request: every problem is listed in `errors`",
    404: "Not found (a malformed id, a missing record and another tenant's record alike)",
    409: "The resource is in the wrong state for this request",
    413: "The upload is over the size limit",
    503: "A service the request needs (the job registry, the inference deployment) is unavailable",
}


class ApiError(ErrorBody):
    """The spec's error body; some errors add fields (``job_status``, ``requested``, ...)."""

    model_config = ConfigDict(extra="allow")


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """OpenAI's error shape, answered on ``/v1`` so OpenAI clients raise their usual exceptions."""

    error: OpenAIErrorDetail


def errors(*statuses: int, model: type[BaseModel] = ApiError) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: these error statuses, each with the error body schema."""
    return {status: {"model": model, "description": _WHY[status]} for status in statuses}


_JOB = {"job_id": "$response.body#/job_id"}
_FILE = {"file_id": "$response.body#/id"}
_FT_JOB = {"fine_tuning_job_id": "$response.body#/id"}
# Where an answer's ids lead (OpenAPI links): clients and stateful testers follow them.
LINKS: dict[tuple[str, str], dict[str, tuple[str, str, dict]]] = {
    ("post", "/api/upload-dataset"): {
        "GetDataset": ("get", "/api/datasets/{dataset_id}", {"dataset_id": "$response.body#/dataset_id"}),
        "DeleteDataset": ("delete", "/api/datasets/{dataset_id}", {"dataset_id": "$response.body#/dataset_id"}),
        "StartFinetuning": ("post", "/api/start-finetuning",
                            {"$request.body": {"dataset_id": "$response.body#/dataset_id"}}),
    },
    ("post", "/api/start-finetuning"): {
        "TrainingStatus": ("get", "/api/training-status/{job_id}", _JOB),
        "GetJob": ("get", "/api/jobs/{job_id}", _JOB),
        "CancelJob": ("post", "/api/jobs/{job_id}/cancel", _JOB),
        "PauseJob": ("post", "/api/jobs/{job_id}/pause", _JOB),
        "JobEvents": ("get", "/api/jobs/{job_id}/events", _JOB),
        "LossHistory": ("get", "/api/jobs/{job_id}/history", _JOB),
        "JobExports": ("get", "/api/jobs/{job_id}/exports", _JOB),
    },
    ("post", "/api/jobs/{job_id}/pause"): {
        "ResumeJob": ("post", "/api/jobs/{job_id}/resume", _JOB),
        "CancelPausedJob": ("post", "/api/jobs/{job_id}/cancel", _JOB),
    },
    ("post", "/v1/files"): {
        "RetrieveFile": ("get", "/v1/files/{file_id}", _FILE),
        "FileContent": ("get", "/v1/files/{file_id}/content", _FILE),
        "DeleteFile": ("delete", "/v1/files/{file_id}", _FILE),
        "CreateFineTuningJob": ("post", "/v1/fine_tuning/jobs",
                                {"$request.body": {"training_file": "$response.body#/id"}}),
    },
    ("post", "/v1/fine_tuning/jobs"): {
        "RetrieveFineTuningJob": ("get", "/v1/fine_tuning/jobs/{fine_tuning_job_id}", _FT_JOB),
        "CancelFineTuningJob": ("post", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel", _FT_JOB),
        "PauseFineTuningJob": ("post", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/pause", _FT_JOB),
        "FineTuningJobEvents": ("get", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/events", _FT_JOB),
        "FineTuningJobCheckpoints": ("get", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", _FT_JOB),
    },
    ("post", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/pause"): {
        "ResumeFineTuningJob": ("post", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/resume", _FT_JOB),
    },
    ("post", "/api/export-model/{job_id}"): {
        "GetExport": ("get", "/api/exports/{export_id}", {"export_id": "$response.body#/export_id"}),
    },
}


def exact_openapi(app: FastAPI) -> None:
    """Serve an OpenAPI document without the 422 answers FastAPI adds but this app never gives, and with
    the links between operations."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            for path in schema["paths"].values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
                    ok = operation.get("responses", {}).get("200", {}).get("content", {})
                    if len(ok) > 1 and ok.get("application/json") == {"schema": {}}:
                        del ok["application/json"]  # FastAPI's default, on a route that answers another type
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            _add_links(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _add_links(schema: dict) -> None:
    paths = schema["paths"]
    for (method, path), links in LINKS.items():
        if path not in paths:
            continue
        answer = paths[path][method]["responses"]["200"]
        for name, (target_method, target_path, parameters) in links.items():
            link = {"operationId": paths[target_path][target_method]["operationId"]}
            body = parameters.get("$request.body")
            link |= {"requestBody": body} if body else {"parameters": parameters}
            answer.setdefault("links", {})[name] = link
