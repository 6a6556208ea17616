"""What a route needs, handed in through FastAPI dependencies: the services and the principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..services.context import Services
from ..errors import Forbidden
from ..services.principal import Principal

# Bound of every offset-like query parameter: far above any real table, far below what SQL can bind.
MAX_OFFSET = 1_000_000_000

_services: Services | None = None


def set_services(services: Services) -> None:
    """Called once by the ingress replica. A module global, not ``app.state``: Serve runs a
    pickled copy of the FastAPI app in the replica, while this module is imported by reference."""
    global _services
    _services = services


def get_services() -> Services:
    if _services is None:
        raise RuntimeError("API services are not initialised (the ingress sets them on start)")
    return _services


def get_principal(request: Request) -> Principal:
    """Who the request acts for: the principal ``security.SecurityMiddleware`` resolved from its API key
    (the default tenant, as an admin, when auth is off and no key is sent). No principal means the
    middleware did not run: refuse rather than act for anyone."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise RuntimeError("No principal on the request: the security middleware is not installed")
    return principal


def get_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The principal, if it is an admin (403 for every other key)."""
    if not principal.is_admin:
        raise Forbidden("Only an admin key may do this")
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(get_admin)]
