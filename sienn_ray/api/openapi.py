"""The OpenAPI document as exact as the app: every status a route can answer, with its error body.

Routes name their error statuses with ``errors(...)``; ``exact_openapi`` drops
FastAPI's automatic 422 (request validation answers 400 here, see ``errors.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

from ..auth.config import SecurityConfig
from ..auth.routes import STATE_CHANGING
from ..schemas.common import ErrorBody
from ..settings import get_settings

_WHY = {
    400: "Invalid request: every problem is listed in `errors`",
    401: "No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)",
    403: "Not allowed: an admin-only route, or a state-changing request from another origin",
    404: "Not found (a malformed id, a missing record and another tenant's record alike)",
    409: "The resource is in the wrong state for this request",
    413: "The request body is over the size limit",
    421: "The Host is not a name of this API (a loopback listener answers loopback names only)",
    429: "Rate limit (`RATE_LIMITED`, with `Retry-After`) or quota (`QUOTA_EXCEEDED`, naming it) reached",
    503: "A service the request needs (the job registry, the inference deployment) is unavailable",
}
# How a client sends its API key (declared when auth is on).
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
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


def exact_openapi(app: FastAPI, security: SecurityConfig | None = None) -> None:
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
            _add_storage_errors(schema)
            _add_security(schema, security or SecurityConfig.from_settings(get_settings()))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


# The operations that write the store: a full disk or database is their 507 (one list here rather than
# a 507 on each route decorator).
STORAGE_WRITES = {("post", "/api/upload-dataset"), ("delete", "/api/datasets/{dataset_id}"),
                  ("post", "/api/start-finetuning"), ("post", "/api/jobs/{job_id}/cancel"),
                  ("post", "/api/jobs/{job_id}/pause"), ("post", "/api/jobs/{job_id}/resume"),
                  ("post", "/api/export-model/{job_id}")}
STORAGE_FULL = "The disk or the database is full (`INSUFFICIENT_STORAGE`): nothing was stored"


def _add_storage_errors(schema: dict) -> None:
    for method, path in STORAGE_WRITES:
        responses = schema["paths"].get(path, {}).get(method, {}).get("responses")
        if responses is not None and "503" in responses:
            responses.setdefault("507", {**responses["503"], "description": STORAGE_FULL})


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


def _add_security(schema: dict, config: SecurityConfig) -> None:
    """The answers the security middleware may give on every operation, and how to send a key."""
    for path, operations in schema["paths"].items():
        model = OpenAIError if path.startswith("/v1/") else ApiError
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        for method, operation in operations.items():
            statuses = [421] if config.loopback_listener else []
            statuses += [401] if config.auth_required else []
            statuses += [429] if config.rate_limits is not None else []
            if method.upper() in STATE_CHANGING:
                statuses += [403, 413]
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(str(status), {"description": _WHY[status],
                                                   "content": {"application/json": {"schema": ref}}})
    if config.auth_required:
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        schema["security"] = [{"bearer": []}, {"apiKey": []}]
