"""What each route is, for the security middleware: its rate-limit class, whether it is audited, open.

One table for every route, whoever wrote it: a route not named here is
``standard``, audited when its method changes state, and needs a key. Keys are
(method, path template) as the app declares them; a request is matched by its
path before routing, so the rule holds for a path no route serves too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Routes in a class other than standard (SIENN_RATE_LIMITS names the classes' limits).
LIMIT_CLASSES: dict[tuple[str, str], str] = {
    ("POST", "/api/start-finetuning"): "training",
    ("POST", "/api/export-model/{job_id}"): "training",
    ("POST", "/v1/fine_tuning/jobs"): "training",
    ("POST", "/api/test-model"): "inference",
    ("POST", "/v1/completions"): "inference",
    ("POST", "/v1/chat/completions"): "inference",
    ("POST", "/v1/files"): "standard",
}
# Uploads: their streaming parser enforces SIENN_MAX_UPLOAD_BYTES; every other body SIENN_MAX_JSON_BYTES.
UPLOAD_ROUTES = frozenset({("POST", "/api/upload-dataset"), ("POST", "/v1/files")})
# Static console files and liveness: no data, answered without a key and not counted.
OPEN_PATHS = frozenset({"/health", "/"})
OPEN_PREFIXES = ("/console/",)
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RouteRule:
    limit_class: str | None  # None: not rate limited (open paths)
    audited: bool
    open: bool
    upload: bool = False  # its body is not held to the JSON limit


def _pattern(template: str) -> re.Pattern:
    """``/api/export-model/{job_id}`` -> a regex matching one path segment per parameter."""
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")


_PATTERNS = [(method, _pattern(template), limit_class) for (method, template), limit_class in LIMIT_CLASSES.items()]
_UPLOADS = [(method, _pattern(template)) for method, template in UPLOAD_ROUTES]


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def rule_for(method: str, path: str) -> RouteRule:
    """The rule of a request, from its method and path (before routing: an unknown path is standard)."""
    if is_open(path):
        return RouteRule(None, audited=False, open=True)
    limit_class = next((cls for m, pattern, cls in _PATTERNS if m == method and pattern.match(path)), "standard")
    upload = any(m == method and pattern.match(path) for m, pattern in _UPLOADS)
    # Inference answers change nothing stored: not audited, however many there are.
    return RouteRule(limit_class, audited=method in STATE_CHANGING and limit_class != "inference", open=False,
                     upload=upload)
