"""The registry's view of the Ray cluster: its shape, what is free, and the runner actors it starts."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import ray
import yaml

from .placement_groups import sweep_after_kill
from .queue import RESOURCES, Capacity, NodeShape, Resources, capacity_from_autoscaler
from .runner import JobRunner

log = logging.getLogger(__name__)


def head_node_strategy():
    """Place on the head node (control plane: registry, runners, Train controllers).

    Hard affinity: with soft affinity Ray spills 0-CPU actors off a 0-CPU head, and a
    runner on a worker node dies with it, taking the Train controller along.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    for node in ray.nodes():
        if node.get("Alive") and node.get("Resources", {}).get("node:__internal_head__"):
            return NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
    return "DEFAULT"


class RayCluster:
    """``Cluster`` over Ray: alive nodes (or the autoscaler's node types), free resources, runner actors."""

    def __init__(self, namespace: str, heartbeat_s: float, autoscaler_config: Path | None = None):
        self.namespace, self.heartbeat_s, self.autoscaler_config = namespace, heartbeat_s, autoscaler_config

    def capacity(self) -> Capacity:
        if self.autoscaler_config is not None and self.autoscaler_config.is_file():
            try:
                scaled = capacity_from_autoscaler(yaml.safe_load(self.autoscaler_config.read_text()) or {})
            except (OSError, yaml.YAMLError, TypeError, ValueError):
                log.warning("unreadable autoscaler config %s; using the nodes there are", self.autoscaler_config)
                scaled = None
            if scaled is not None:
                return scaled
        shapes = Counter(tuple(float(n["Resources"].get(r, 0)) for r in RESOURCES)
                         for n in ray.nodes() if n.get("Alive"))
        return Capacity([NodeShape(dict(zip(RESOURCES, shape)), count) for shape, count in shapes.items()])

    def free(self) -> Resources:
        available = ray.available_resources()
        return {name: float(available.get(name, 0.0)) for name in RESOURCES}

    def launch_runner(self, job_id: str, token: int, holder: str) -> None:
        runner = JobRunner.options(name=holder, namespace=self.namespace, lifetime="detached",
                                   scheduling_strategy=head_node_strategy()).remote(
            job_id, token, self.namespace, self.heartbeat_s)
        runner.run.remote()

    def stop_runner(self, holder: str) -> None:
        try:
            ray.kill(ray.get_actor(holder, namespace=self.namespace), no_restart=True)
        except ValueError:  # gone already
            return
        sweep_after_kill()  # a run killed while its workers started keeps its placement group otherwise
