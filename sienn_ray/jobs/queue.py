"""What a job needs, whether the cluster could ever give it, and which queued jobs to launch now.

Plain Python: the registry feeds in what Ray reports (node shapes, free
resources) and applies the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..schemas.jobs import JobRecord, TrainingConfig

RESOURCES = ("CPU", "GPU")
Resources = dict[str, float]


def per_worker(config: TrainingConfig) -> Resources:
    """One Ray Train worker's bundle."""
    return {"CPU": float(config.cpus_per_worker), "GPU": 1.0 if config.use_gpu else 0.0}


def job_needs(config: TrainingConfig) -> Resources:
    """Everything the job's workers hold together (runner and Train controller take no CPU)."""
    return {name: amount * config.num_workers for name, amount in per_worker(config).items()}


def fits(need: Resources, free: Resources) -> bool:
    return all(need.get(name, 0.0) <= free.get(name, 0.0) + 1e-9 for name in RESOURCES)


def minus(free: Resources, used: Resources) -> Resources:
    return {name: free.get(name, 0.0) - used.get(name, 0.0) for name in RESOURCES}


def _fmt(resources: Resources) -> str:
    return ", ".join(f"{max(resources.get(n, 0.0), 0.0):g} {n}" for n in RESOURCES)


@dataclass(frozen=True)
class NodeShape:
    """A kind of node: its resources and how many of it the cluster has or may add."""

    resources: Resources
    count: int


@dataclass(frozen=True)
class Capacity:
    """The most the cluster can ever hold: its nodes now, or its autoscaler's node types at their maximum."""

    nodes: list[NodeShape] = field(default_factory=list)
    source: str = "nodes"  # "nodes" (no autoscaler: what is there is all there is) or "autoscaler"

    def totals(self) -> Resources:
        return {name: sum(n.resources.get(name, 0.0) * n.count for n in self.nodes) for name in RESOURCES}

    def largest(self) -> Resources:
        return {name: max((n.resources.get(name, 0.0) for n in self.nodes if n.count), default=0.0)
                for name in RESOURCES}

    def problems(self, config: TrainingConfig) -> list[str]:
        """Why a job with ``config`` could never be placed (empty: it fits, now or once nodes are added)."""
        where = "its autoscaler's node types at their maximum" if self.source == "autoscaler" else "its nodes"
        worker, total, problems = per_worker(config), job_needs(config), []
        if config.use_gpu and not self.totals()["GPU"]:
            return [f"use_gpu asks for GPUs but no node has one ({where}: {_fmt(self.totals())})"]
        if not any(fits(worker, n.resources) for n in self.nodes if n.count):
            problems.append(f"one worker asks for {_fmt(worker)}; the largest node has {_fmt(self.largest())}")
        if not fits(total, self.totals()):
            problems.append(f"{config.num_workers} workers ask for {_fmt(total)} in total; the cluster has "
                            f"{_fmt(self.totals())} ({where})")
        return problems


def capacity_from_autoscaler(config: dict) -> Capacity | None:
    """The cluster at its largest, from an autoscaler config (``ray up``'s bootstrap file); None when
    a node type does not declare its resources (then nothing can be ruled out)."""
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    cap = config.get("max_workers")
    shapes = []
    for name, node_type in types.items():
        resources = node_type.get("resources")
        if not isinstance(resources, dict) or "CPU" not in resources:
            return None
        if name == head:
            count = 1
        else:  # a type's own max_workers, within the cluster-wide one
            count = int(node_type.get("max_workers", cap or 0))
            count = count if cap is None else min(count, int(cap))
        shapes.append(NodeShape({n: float(resources.get(n, 0)) for n in RESOURCES}, count))
    return Capacity(shapes, source="autoscaler") if shapes else None


@dataclass(frozen=True)
class LaunchPlan:
    launch: list[JobRecord]
    blocked: JobRecord | None = None  # the first queued job that has to wait
    waiting_for: str | None = None  # what it waits for
    over_quota: list[JobRecord] = field(default_factory=list)  # passed over: their tenant is at its running quota


def plan_launches(queued: list[JobRecord], free: Resources, held: dict[str, int] | None = None) -> LaunchPlan:
    """Launch from the head of the queue while each job fits in what is free; the first that does not
    fit waits, and so does every job behind it (first come, first served within a priority). A job
    whose tenant already holds its ``running_quota`` of jobs (``held``: tenant -> jobs holding
    resources) is passed over: it waits for its tenant, not for the cluster, so others go on."""
    launch, over_quota, held = [], [], dict(held or {})
    for rec in queued:
        if rec.running_quota is not None and held.get(rec.tenant, 0) >= rec.running_quota:
            over_quota.append(rec)
            continue
        need = job_needs(rec.config)
        if not fits(need, free):
            return LaunchPlan(launch, rec, f"Waiting for resources: needs {_fmt(need)}; free now {_fmt(free)}",
                              over_quota)
        launch.append(rec)
        held[rec.tenant] = held.get(rec.tenant, 0) + 1
        free = minus(free, need)
    return LaunchPlan(launch, over_quota=over_quota)
