"""The control plane's timings and limits, and what it asks of the cluster (plain Python)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..settings import Settings
from .queue import Capacity, Resources


@dataclass(frozen=True)
class ControlPolicy:
    lease_ttl_s: float = 30.0  # a runner silent for this long has lost its job (killed, job relaunched)
    launch_grace_s: float = 120.0  # a new runner's time to its first heartbeat (actor start, imports)
    stop_grace_s: float = 30.0  # a cancel or pause not done by then is finished by killing the runner
    max_launches: int = 4  # launches per queueing (submit or resume); then the job fails with the reason
    capacity_cache_s: float = 10.0  # how long the cluster's shape is trusted for admission

    @classmethod
    def from_settings(cls, settings: Settings) -> ControlPolicy:
        return cls(lease_ttl_s=settings.lease_ttl_s, launch_grace_s=settings.launch_grace_s,
                   stop_grace_s=settings.stop_grace_s, max_launches=settings.max_launches)

    @property
    def heartbeat_s(self) -> float:
        """How often a runner renews its lease: three chances before it expires."""
        return self.lease_ttl_s / 3


class Cluster(Protocol):
    """What the registry needs from the cluster (Ray in production, a fake in tests)."""

    def capacity(self) -> Capacity:
        """The most the cluster can ever hold (for admission)."""

    def free(self) -> Resources:
        """Resources free now."""

    def launch_runner(self, job_id: str, token: int, holder: str) -> None:
        """Start the job's runner, named ``holder``, holding lease ``token``; returns at once."""

    def stop_runner(self, holder: str) -> None:
        """Kill the runner named ``holder`` (and the trainer it owns), if it still exists."""
