"""Admission and launch planning, pure."""

from __future__ import annotations

from pathlib import Path

import yaml
from jobs_fakes import job

from sienn_ray.jobs.queue import Capacity, NodeShape, capacity_from_autoscaler, plan_launches

ROOT = Path(__file__).resolve().parents[2]


def test_autoscaler_node_types_decide_what_could_ever_fit():
    capacity = capacity_from_autoscaler(yaml.safe_load((ROOT / "cluster.yaml").read_text()))
    assert capacity.source == "autoscaler" and capacity.totals() == {"CPU": 8 + 8 * 8, "GPU": 8}
    assert capacity.problems(job(num_workers=8, use_gpu=True).config) == []
    too_many = capacity.problems(job(num_workers=9, use_gpu=True).config)
    assert len(too_many) == 1 and "9 GPU" in too_many[0] and "8 GPU" in too_many[0]
    assert "largest node has 8 CPU" in capacity.problems(job(cpus_per_worker=16).config)[0]
    assert capacity_from_autoscaler({"available_node_types": {"w": {"max_workers": 3}}}) is None


def test_without_gpus_use_gpu_never_fits():
    local = Capacity([NodeShape({"CPU": 4, "GPU": 0}, 1)])
    (problem,) = local.problems(job(use_gpu=True).config)
    assert "no node has one" in problem and "4 CPU" in problem


def test_the_first_job_that_does_not_fit_blocks_the_ones_behind_it():
    big, small = job(num_workers=3), job()
    plan = plan_launches([small, big, job()], {"CPU": 3, "GPU": 0})
    assert plan.launch == [small] and plan.blocked is big
    assert plan.waiting_for == "Waiting for resources: needs 3 CPU, 0 GPU; free now 2 CPU, 0 GPU"
    assert plan_launches([small], {"CPU": 1}).launch == [small]
