"""What a route needs, handed in through FastAPI dependencies: the services and the principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..errors import Forbidden
from ..services.context import Services
from ..services.principal import Principal

# Bound of every offset-like query parameter: far above any real table, far below what SQL can bind.
MAX_OFFSET = 1_000_000_000

_services: Services | None = None


def set_services(services: Services) -> None:
    """Called once by the ingress replica. A module global, not ``app.state``: Serve runs a
    pickled copy of the FastAPI app in the replica, while this module is imported by reference."""
    global _services
    _services = services


def current_services() -> Services:
    """The services of this replica, for code outside a request (the ingress's health check)."""
    if _services is None:
        raise RuntimeError("API services are not initialised (the ingress sets them on start)")
    return _services


# The dependencies are coroutines on purpose: FastAPI runs a plain ``def`` dependency in its thread
# pool, and under load each of those hand-offs waits for the GIL (bench/api_load.py measured status
# polling at a third of /health's rate with two sync dependencies per request).
async def get_services() -> Services:
    return current_services()


async def get_principal(request: Request) -> Principal:
    return principal_of(request)


def principal_of(request: Request) -> Principal:
    """Who the request acts for: the principal ``security.SecurityMiddleware`` resolved from its API key
    (the default tenant, as an admin, when auth is off and no key is sent). No principal means the
    middleware did not run: refuse rather than act for anyone."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise RuntimeError("No principal on the request: the security middleware is not installed")
    return principal


async def get_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The principal, if it is an admin (403 for every other key)."""
    if not principal.is_admin:
        raise Forbidden("Only an admin key may do this")
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(get_admin)]
