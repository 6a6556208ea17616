"""What a route needs, handed in through FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends

from ..jobs.client import RegistryClient


@dataclass
class Services:
    registry: RegistryClient
    # Serve DeploymentHandle of the inference deployment (None when not deployed).
    inference: Any = None


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


ServicesDep = Annotated[Services, Depends(get_services)]
