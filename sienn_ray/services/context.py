"""What the services work with: the registry (writes), the read-only store (reads), Ray launchers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..store import ReadStore

if TYPE_CHECKING:  # the client imports Ray; the services only call it
    from ..export.run import ExportSpec
    from ..jobs.client import RegistryClient


def _nothing(*_args) -> None:
    return None


@dataclass
class Services:
    registry: RegistryClient
    reader: ReadStore
    launch_export: Callable[[ExportSpec], None] = _nothing
    launch_calibration: Callable[[str], None] = _nothing  # measure a base model's throughput, off the API
    inference: Any = None  # the inference deployment's Serve handle (None where it is not deployed)
