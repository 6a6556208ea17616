"""Errors on ``/v1`` in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with the same
HTTP statuses as everywhere else, so OpenAI's SDKs raise their usual exception classes
(``BadRequestError`` 400, ``AuthenticationError`` 401, ``NotFoundError`` 404, ``ConflictError`` 409,
``RateLimitError`` 429, ...). ``code`` carries our error code, ``param`` the request parameter at
fault when one is, and ``errors`` every problem when there are several."""

from __future__ import annotations

import logging
from typing import Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import SiennError
from .errors import describe_validation_errors

log = logging.getLogger("sienn_ray.api")


def openai_error(status: int, message: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None, errors: list[str] | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"  # OpenAI's own types, 404 and 401 too
    body = {"message": message, "type": kind, "param": param, "code": code}
    if errors and len(errors) > 1:
        body["errors"] = errors
    return JSONResponse(status_code=status, headers=headers, content={"error": body})


def _param(loc: tuple) -> str | None:
    """A validation error's location as OpenAI names a parameter: ``hyperparameters.n_epochs``."""
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else [str(p) for p in loc]
    return ".".join(parts) or None


class OpenAIErrors(APIRoute):
    """Answer errors on these routes in OpenAI's shape instead of the app's spec body."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request):
            try:
                return await handler(request)
            except RequestValidationError as err:
                problems = describe_validation_errors(err.errors())
                first = err.errors()[0].get("loc", ()) if err.errors() else ()
                return openai_error(400, "; ".join(problems), "VALIDATION_ERROR", _param(tuple(first)),
                                    errors=problems)
            except SiennError as err:
                if err.status_code >= 500:
                    log.error("request failed: %s", err.detail)
                return openai_error(err.status_code, err.detail, err.error_code, err.extra.get("param"),
                                    headers=err.headers, errors=err.errors)
            except StarletteHTTPException as err:  # e.g. a body that is not JSON at all
                return openai_error(err.status_code, str(err.detail), "VALIDATION_ERROR")
            except Exception as err:  # noqa: BLE001 - still an OpenAI-shaped answer for OpenAI clients
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                return openai_error(500, f"Internal server error: {type(err).__name__}", "INTERNAL_ERROR")

        return route
