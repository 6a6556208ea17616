"""Domain errors raised by the core and mapped to HTTP at the API edge.

Each error carries an ``error_code`` (the spec's codes plus a few of ours) and an
HTTP status. They survive pickling across Ray actors because ``__reduce__``
rebuilds them from their constructor arguments.
"""

from __future__ import annotations

import math


class SiennError(Exception):
    """Base class: a message for the user, a stable code and an HTTP status."""

    error_code = "INTERNAL_ERROR"
    status_code = 500

    def __init__(self, detail: str, *, errors: list[str] | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors or [])
        self.extra = extra

    def __reduce__(self):
        return (_rebuild, (type(self), self.detail, self.errors, self.extra))

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers to answer with: ``Retry-After`` (whole seconds) when the error says when to retry."""
        retry_after = self.extra.get("retry_after")
        return {} if retry_after is None else {"Retry-After": str(max(1, math.ceil(retry_after)))}

    def to_body(self) -> dict:
        """Extra fields the API adds to the spec's error body (besides detail/code/timestamp)."""
        body = dict(self.extra)
        if self.errors:
            body["errors"] = self.errors
        return body


def _rebuild(cls, detail, errors, extra):
    return cls(detail, errors=errors, **extra)


class BadRequest(SiennError):
    error_code = "VALIDATION_ERROR"
    status_code = 400


class DatasetInvalid(SiennError):
    error_code = "DATASET_INVALID"
    status_code = 400


class PayloadTooLarge(SiennError):
    error_code = "PAYLOAD_TOO_LARGE"
    status_code = 413


class DatasetNotFound(SiennError):
    error_code = "DATASET_NOT_FOUND"
    status_code = 404


class DatasetInUse(SiennError):
    error_code = "DATASET_IN_USE"
    status_code = 409


class JobNotFound(SiennError):
    error_code = "JOB_NOT_FOUND"
    status_code = 404


class JobStateConflict(SiennError):
    """The job exists but is in the wrong state for this request (e.g. not completed)."""

    error_code = "JOB_NOT_READY"
    status_code = 409


class EvaluationNotFound(SiennError):
    error_code = "EVALUATION_NOT_FOUND"
    status_code = 404


class ModelNotFound(SiennError):
    error_code = "MODEL_NOT_FOUND"
    status_code = 404


class TrainingFailed(SiennError):
    error_code = "TRAINING_FAILED"
    status_code = 500


class ExportFailed(SiennError):
    error_code = "EXPORT_FAILED"
    status_code = 400


class ExportNotFound(SiennError):
    error_code = "EXPORT_NOT_FOUND"
    status_code = 404


class ExportInProgress(SiennError):
    error_code = "EXPORT_IN_PROGRESS"
    status_code = 409


class ServiceUnavailable(SiennError):
    error_code = "SERVICE_UNAVAILABLE"
    status_code = 503


class Overloaded(SiennError):
    """A bounded queue is full: retry after ``retry_after`` seconds (sent as the Retry-After header)."""

    error_code = "SERVICE_OVERLOADED"
    status_code = 503

    def __init__(self, detail: str, *, retry_after: float = 1.0, errors: list[str] | None = None, **extra):
        super().__init__(detail, errors=errors, retry_after=retry_after, **extra)


class ResourcesUnavailable(SiennError):
    """The job asks for more than the cluster has and could ever add."""

    error_code = "RESOURCES_UNAVAILABLE"
    status_code = 400


class Unauthorized(SiennError):
    """No API key, or one that is unknown or revoked."""

    error_code = "UNAUTHORIZED"
    status_code = 401

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="sienn-ray"'}


class Forbidden(SiennError):
    """The key is valid but may not do this (an admin-only route)."""

    error_code = "FORBIDDEN"
    status_code = 403


class QuotaExceeded(SiennError):
    """The key's tenant is at one of its quotas (``quota`` names it); nothing was stored."""

    error_code = "QUOTA_EXCEEDED"
    status_code = 429


class KeyExists(SiennError):
    error_code = "KEY_EXISTS"
    status_code = 409


class KeyNotFound(SiennError):
    error_code = "KEY_NOT_FOUND"
    status_code = 404
