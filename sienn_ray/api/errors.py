"""The one table from exceptions to HTTP responses in the spec's error format."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..errors import SiennError
from ..schemas.common import utcnow

log = logging.getLogger("sienn_ray.api")

_HTTP_CODES = {
    400: "VALIDATION_ERROR", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "VALIDATION_ERROR",
}


def error_response(status: int, detail: str, error_code: str, /, headers: dict[str, str] | None = None,
                   **extra) -> JSONResponse:
    body = {"detail": detail, "error_code": error_code, "timestamp": utcnow().isoformat().replace("+00:00", "Z")}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(status_code=status, content=body, headers=headers)


def describe_validation_errors(errors) -> list[str]:
    """Pydantic errors as 'body.config.lora_r: Input should be greater than or equal to 1'."""
    out = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()))
        out.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return out


async def _sienn_error(_request: Request, exc: SiennError):
    if exc.status_code >= 500:
        log.error("request failed: %s", exc.detail)
    return error_response(exc.status_code, exc.detail, exc.error_code, headers=exc.headers, **exc.to_body())


async def _validation_error(_request: Request, exc: RequestValidationError):
    problems = describe_validation_errors(exc.errors())
    return error_response(400, "Invalid request: " + "; ".join(problems), "VALIDATION_ERROR", errors=problems)


async def _http_error(request: Request, exc: StarletteHTTPException):
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No such endpoint: {request.method} {request.url.path}"
    if exc.status_code == 405:  # Starlette names only the first matching route's methods
        methods = allowed_methods(request)
        headers["Allow"] = ", ".join(methods)
        detail = f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(methods)}"
    return error_response(exc.status_code, detail, code, headers=headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path (RFC 9110: a 405 lists them in Allow)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)


async def _unexpected(request: Request, exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, f"Internal server error: {type(exc).__name__}", "INTERNAL_ERROR")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SiennError, _sienn_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
