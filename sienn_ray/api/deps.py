"""What a route needs, handed in through FastAPI dependencies: the services and the principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ..services.context import Services
from ..services.principal import DEFAULT_PRINCIPAL, Principal

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


async def get_principal() -> Principal:
    """Who the request acts for. Without API keys: the default tenant, as an admin. Authentication
    replaces this one dependency (``app.dependency_overrides`` or a new body) with the key's principal."""
    return DEFAULT_PRINCIPAL


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
