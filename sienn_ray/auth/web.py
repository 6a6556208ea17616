"""Browser safety rules: which Host a loopback listener answers, which Origin may change state.

DNS rebinding makes a hostile name resolve to 127.0.0.1, so a page on it can
reach a loopback-only API as "same origin": its requests then carry that
hostile name as Host, which a loopback listener refuses. A page on another
origin can still send a cross-site form POST without any preflight: such a
request carries its Origin, which must be the API's own (the Host it asked)
or one of ``SIENN_ALLOWED_ORIGINS``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..settings import is_loopback_name


def host_name(host_header: str) -> str:
    """``127.0.0.1:8000`` -> ``127.0.0.1``, ``[::1]:8000`` -> ``::1``."""
    value = host_header.strip()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(host_header: str | None, loopback_listener: bool, allowed_hosts: frozenset[str]) -> bool:
    """On a loopback listener only loopback names (plus ``SIENN_ALLOWED_HOSTS``); elsewhere any Host,
    unless ``SIENN_ALLOWED_HOSTS`` lists them."""
    name = host_name(host_header or "").lower()
    if name in allowed_hosts:
        return True
    if loopback_listener:
        return is_loopback_name(name)
    return not allowed_hosts


def origin_allowed(origin: str, host_header: str | None, allowed_origins: frozenset[str]) -> bool:
    """The API's own origin (same host and port as the Host asked) or one configured."""
    if origin.rstrip("/").lower() in allowed_origins:
        return True
    if origin == "null" or not host_header:
        return False
    return urlsplit(origin).netloc.lower() == host_header.strip().lower()


def remote_peer(client: tuple | None) -> bool:
    """Whether an ASGI ``client`` is a peer beyond this host: an IP address that is not loopback. A real
    connection always reports the peer's IP; an in-process client (a test client) reports a name."""
    if not client:
        return False
    try:
        return not ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False


def parse_list(text: str) -> frozenset[str]:
    return frozenset(part.strip().rstrip("/").lower() for part in text.split(",") if part.strip())
