"""The security middleware: every request, whatever route it reaches, passes here first.

In order: the Host a loopback listener answers (421), the Origin of a
state-changing request (403), the API key -> principal (401), the caller's rate
limit for the route's class (429, and ``X-RateLimit-*`` on every counted
answer), the body's size (413; uploads keep their own limit), then the route;
a state-changing request is written to the audit trail once answered. Routes
read the principal through ``deps.get_principal``. The rules per route live in
``auth/routes.py``.
"""

from __future__ import annotations

from functools import cached_property

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth.audit import AuditWriter, target_id
from ..auth.config import SecurityConfig
from ..auth.keys import PREFIX as KEY_PREFIX
from ..auth.resolver import MISS, KeyResolver
from ..auth.routes import STATE_CHANGING, rule_for
from ..auth.web import host_allowed, origin_allowed, remote_peer
from ..errors import Unauthorized
from ..schemas.auth import AuditEntry
from ..schemas.common import utcnow
from ..services.principal import DEFAULT_PRINCIPAL, Principal
from ..settings import get_settings
from .deps import current_services
from .errors import error_response
from .openai_errors import openai_error
from .rate_limit_store import build_limiter

FIRST_KEY_HINT = ("No API key exists yet: on the API's host, create the first admin key with "
                  "`python -m sienn_ray keys create --name admin --admin` (it is printed once)")
NEED_KEY = "This API needs a key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
AUDIT_BODY_BYTES = 64 * 1024  # of a JSON answer, read for the id it names


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, config: SecurityConfig | None = None):
        self.app = app
        # Read where the app runs (a Serve replica reads its own environment), on first use.
        self._config = config
        self._backends: _Backends | None = None

    @property
    def config(self) -> SecurityConfig:
        if self._config is None:
            self._config = SecurityConfig.from_settings(get_settings())
        return self._config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        config, headers = self.config, Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        host = headers.get("host")
        if not host_allowed(host, config.loopback_listener, config.allowed_hosts):
            return await _refuse(scope, receive, send, 421, "HOST_NOT_ALLOWED",
                                 f"Host {host!r} is not a name of this API (it listens on loopback only; "
                                 "SIENN_ALLOWED_HOSTS adds names)")
        if method in STATE_CHANGING and not _origin_ok(headers, host, config):
            return await _refuse(scope, receive, send, 403, "ORIGIN_NOT_ALLOWED",
                                 f"A {method} from origin {headers.get('origin') or 'another site'} is not "
                                 "allowed (SIENN_ALLOWED_ORIGINS lists the origins allowed besides the API's own)")
        rule = rule_for(method, path)
        if rule.open:
            return await self.app(scope, receive, send)
        backends = self._ensure_backends()
        try:
            auth_required = config.auth_required or (config.auth_auto and remote_peer(scope.get("client")))
            principal = await backends.principal(headers, auth_required)
        except Unauthorized as err:
            return await _refuse(scope, receive, send, 401, err.error_code, err.detail, err.headers)
        decision = None
        if backends.limiter is not None:
            decision = await backends.limiter.hit(config.rate_limits[rule.limit_class], rule.limit_class,
                                                  _caller(principal, scope))
        if decision is not None and not decision.allowed:
            return await _refuse(scope, receive, send, 429, "RATE_LIMITED",
                                 f"Rate limit of {config.rate_limits[rule.limit_class]} for {rule.limit_class} "
                                 f"requests reached; retry in {decision.retry_after()} s", decision.headers())
        if not rule.upload:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > config.max_json_bytes:
                return await _refuse(scope, receive, send, 413, "PAYLOAD_TOO_LARGE", _too_large(config),
                                     decision.headers() if decision else None)
            receive = _limited(receive, config.max_json_bytes)
        scope.setdefault("state", {})["principal"] = principal
        answer = _Answer(send, decision.headers() if decision else {}, capture=rule.audited)
        await self.app(scope, receive, answer.send)
        if rule.audited and answer.status is not None:
            backends.audit.record(_entry(scope, principal, answer))

    def _ensure_backends(self) -> _Backends:
        if self._backends is None:
            self._backends = _Backends(self.config)
        return self._backends


class _Backends:
    """What the middleware talks to, each built on first use in the process that serves (a Serve replica):
    a request with auth off and no key reads no key store, a GET writes no audit trail."""

    def __init__(self, config: SecurityConfig):
        self.config = config

    @cached_property
    def resolver(self) -> KeyResolver:
        return KeyResolver(current_services().reader, self.config.quota_defaults, self.config.key_cache_s)

    @cached_property
    def limiter(self):
        return build_limiter(self.config, get_settings().ray_namespace)

    @cached_property
    def audit(self) -> AuditWriter:
        return AuditWriter(current_services().registry.add_audit)

    async def principal(self, headers: Headers, auth_required: bool) -> Principal:
        """The key's principal; without a key, the default principal when auth is off (else 401)."""
        presented = _presented_key(headers)
        if not auth_required and presented is not None and not presented.startswith(KEY_PREFIX):
            # Auth off: a value that does not even look like one of our keys is ignored, since SDKs must
            # send some key (the OpenAI one refuses an empty api_key); a sienn_ key that is malformed,
            # unknown or revoked is still refused.
            presented = None
        if presented is None:
            if not auth_required:
                return DEFAULT_PRINCIPAL
            keys_exist = await run_in_threadpool(self.resolver.keys_exist)
            raise Unauthorized(NEED_KEY if keys_exist else FIRST_KEY_HINT)
        found = self.resolver.cached(presented)
        if found is MISS:
            found = await run_in_threadpool(self.resolver.resolve, presented)
        if found is None:
            raise Unauthorized("The API key is unknown or revoked")
        return found


class _Answer:
    """Wraps ``send``: adds the rate-limit headers, notes the status and (when audited) a JSON body's start."""

    def __init__(self, send: Send, extra_headers: dict[str, str], capture: bool):
        self._send, self.extra_headers, self.capture = send, extra_headers, capture
        self.status: int | None = None
        self.body = bytearray()
        self._json = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = MutableHeaders(scope=message)
            for name, value in self.extra_headers.items():
                headers[name] = value
            self._json = headers.get("content-type", "").startswith("application/json")
        elif message["type"] == "http.response.body" and self.capture and self._json:
            room = AUDIT_BODY_BYTES - len(self.body)
            if room > 0:
                self.body += message.get("body", b"")[:room]
        await self._send(message)


def _too_large(config: SecurityConfig) -> str:
    return f"Request body is over the limit of {config.max_json_bytes} bytes (SIENN_MAX_JSON_BYTES)"


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that counts the body as it streams (a Content-Length can lie, chunked bodies have none)
    and raises 413 past ``limit``, before the route parses anything. Written here rather than FastAPI's
    ``max_body_size``, whose refusal is plain text, not the spec's error body."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, f"Request body is over the limit of {limit} bytes (SIENN_MAX_JSON_BYTES)")
        return message

    return counted


def _presented_key(headers: Headers) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else ""
    key = headers.get("x-api-key")
    return key.strip() if key is not None else None


def _origin_ok(headers: Headers, host: str | None, config: SecurityConfig) -> bool:
    origin = headers.get("origin")
    if origin is None:  # not sent by a browser page (curl, SDKs), unless the browser says it is cross-site
        return headers.get("sec-fetch-site") != "cross-site"
    return origin_allowed(origin, host, config.allowed_origins)


def _caller(principal: Principal, scope: Scope) -> str:
    if principal.key_name is not None:
        return f"key:{principal.key_name}"
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


def _entry(scope: Scope, principal: Principal, answer: _Answer) -> AuditEntry:
    """What the router left in the scope names the route (its template) and its path parameters."""
    client = scope.get("client")
    return AuditEntry(at=utcnow(), key_name=principal.key_name, tenant=principal.tenant, method=scope["method"],
                      route=getattr(scope.get("route"), "path", None) or scope["path"], path=scope["path"],
                      target_id=target_id(scope.get("path_params") or {}, bytes(answer.body)), status=answer.status,
                      client=client[0] if client else None)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str,
                  headers: dict[str, str] | None = None) -> None:
    """The refusal in the spec's error body, or OpenAI's shape on ``/v1`` (its SDK raises by status)."""
    if scope["path"].startswith("/v1/"):
        response = openai_error(status, detail, code, headers=headers)
    else:
        response = error_response(status, detail, code, headers=headers)
    await response(scope, receive, send)

