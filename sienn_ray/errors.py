"""Domain errors raised by the core and mapped to HTTP at the API edge.

Each error carries an ``error_code`` (the spec's codes plus a few of ours) and an
HTTP status. They survive pickling across Ray actors because ``__reduce__``
rebuilds them from their constructor arguments.
"""

from __future__ import annotations

import errno
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


class InsufficientStorage(SiennError):
    """The disk or the database is full: nothing was stored; the same request works once space is freed."""

    error_code = "INSUFFICIENT_STORAGE"
    status_code = 507


class StorageUnavailable(SiennError):
    """The storage cannot be written now (a read-only file or file system): nothing was stored."""

    error_code = "STORAGE_UNAVAILABLE"
    status_code = 503


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
# SQLite's primary result codes (the low byte of an extended code): SQLITE_FULL, and the ones a
# read-only or vanished file gives (PERM, READONLY, IOERR, CANTOPEN).
_SQLITE_FULL = 13
_SQLITE_UNWRITABLE = {3, 8, 10, 14}
_FULL_WORDS = ("database or disk is full", "no space left")
_READ_ONLY_WORDS = ("readonly database", "read-only file system", "attempt to write a read")


def storage_error(err: BaseException) -> SiennError | None:
    """What a failed write means for the user, if it is the storage's fault: a full disk or database is
    507 ``InsufficientStorage``, a read-only one 503 ``StorageUnavailable``; None for any other error.

    Looks through the exception's causes (a database driver's error wrapped by SQLAlchemy, an OSError
    re-raised by a library) and, for wrappers that keep only the text, at the message.
    """
    seen: BaseException | None = err
    for _ in range(8):  # a cause chain is short; the bound guards against a cycle
        if seen is None:
            break
        code = getattr(seen, "sqlite_errorcode", None)
        os_errno = seen.errno if isinstance(seen, OSError) else None
        primary = code & 0xFF if isinstance(code, int) else None
        if os_errno in _FULL_ERRNOS or primary == _SQLITE_FULL:
            return _full(seen)
        if os_errno in _READ_ONLY_ERRNOS or primary in _SQLITE_UNWRITABLE:
            return _read_only(seen)
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    text = str(err).lower()
    if any(word in text for word in _FULL_WORDS):
        return _full(err)
    if any(word in text for word in _READ_ONLY_WORDS):
        return _read_only(err)
    return None


def _full(err: BaseException) -> InsufficientStorage:
    return InsufficientStorage(f"Insufficient storage: the disk or database is full ({_reason(err)}); "
                               "nothing was stored. Free some space and retry.")


def _read_only(err: BaseException) -> StorageUnavailable:
    return StorageUnavailable(f"Storage unavailable: it cannot be written now ({_reason(err)}); "
                              "nothing was stored. Retry later.", retry_after=30)


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or (str(err).splitlines() or [type(err).__name__])[0]
    return text[:200]


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
