"""What a route needs, handed in through FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends

from ..errors import BadRequest, DatasetNotFound, ExportNotFound, JobNotFound
from ..jobs.client import RegistryClient
from ..paths import check_id


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


_NOT_FOUND = {"job_id": (JobNotFound, "Job"), "dataset_id": (DatasetNotFound, "Dataset"),
              "export_id": (ExportNotFound, "Export")}


def known_id(value: str, kind: str) -> str:
    """An id from a request. A malformed one names nothing: the same 404 as an unknown one."""
    try:
        return check_id(value, kind)
    except BadRequest:
        error, label = _NOT_FOUND[kind]
        raise error(f"{label} {value} not found") from None
