"""The evaluating phase in RegistryCore: after training, before completion (no Ray)."""

from __future__ import annotations

from jobs_fakes import POLICY, finished, job, start_training, types

from sienn_ray.schemas.common import utcnow
from sienn_ray.schemas.evaluation import EvaluationSummary, ModelFigures
from sienn_ray.schemas.jobs import JobPhase, JobStatus


def _summary(job_id: str, status: str = "completed", error: str | None = None) -> EvaluationSummary:
    figures = ModelFigures(eval_loss=1.0, perplexity=2.7) if status == "completed" else None
    return EvaluationSummary(job_id=job_id, status=status, error=error, report_path="/r.json", finished_at=utcnow(),
                             duration_seconds=3.0, rows_used=6, base=figures, tuned=figures)


def test_a_trained_job_is_evaluating_then_completes_with_its_evaluation(env):
    core, cluster, _, url = env
    job_id, token = start_training(core, cluster, job())
    assert core.begin_evaluation(job_id, token, "/adapter") == {"ok": True}
    rec = core.get_job(job_id)
    assert (rec.status, rec.phase) == (JobStatus.RUNNING, JobPhase.EVALUATING) and rec.lease is not None
    assert core.heartbeat(job_id, token) == {"ok": True, "stop": None}  # the lease still holds
    outcome = finished(20, 3).model_copy(update={"evaluation": _summary(job_id)})
    rec = core.finish_run(job_id, token, outcome)
    assert rec.status == JobStatus.COMPLETED and rec.evaluation.rows_used == 6
    assert "evaluated against the base on 6 held-out rows" in rec.message
    assert types(url, job_id)[-3:] == ["evaluation_started", "evaluated", "completed"]


def test_a_failed_evaluation_does_not_fail_the_trained_job(env):
    core, cluster, _, _ = env
    job_id, token = start_training(core, cluster, job())
    core.begin_evaluation(job_id, token, "/adapter")
    outcome = finished(20, 3).model_copy(update={"evaluation": _summary(job_id, "failed", "out of memory")})
    rec = core.finish_run(job_id, token, outcome)
    assert rec.status == JobStatus.COMPLETED and rec.adapter_path == "/adapter"
    assert rec.evaluation.status == "failed" and "evaluation failed: out of memory" in rec.message


def test_a_cancel_during_the_evaluation_skips_it_and_the_job_completes(env):
    core, cluster, _, _ = env
    job_id, token = start_training(core, cluster, job())
    core.begin_evaluation(job_id, token, "/adapter")
    rec = core.request_stop(job_id, "cancel")
    assert rec.phase == JobPhase.EVALUATING and rec.stop_request == "cancel"
    assert core.heartbeat(job_id, token)["stop"] == "cancel"  # the runner stops its evaluation task
    outcome = finished(20, 3).model_copy(update={"evaluation": _summary(job_id, "failed", "stopped")})
    assert core.finish_run(job_id, token, outcome).status == JobStatus.COMPLETED


def test_an_evaluation_that_ignores_a_stop_is_ended_by_force_and_the_job_completes(env):
    core, cluster, clock, _ = env
    job_id, token = start_training(core, cluster, job())
    core.begin_evaluation(job_id, token, "/adapter")
    core.request_stop(job_id, "pause")
    clock.advance(POLICY.stop_grace_s + 1)
    core.heartbeat(job_id, token)  # the runner is alive, just not stopping
    core.tick()
    rec = core.get_job(job_id)
    assert rec.status == JobStatus.COMPLETED and rec.adapter_path == "/adapter" and rec.lease is None
    assert cluster.stopped  # its runner was killed


def test_no_evaluation_starts_for_a_stale_runner_or_after_a_stop(env):
    core, cluster, _, _ = env
    job_id, token = start_training(core, cluster, job())
    assert core.begin_evaluation(job_id, token + 1, "/adapter") == {"ok": False}
    core.request_stop(job_id, "cancel")
    assert core.begin_evaluation(job_id, token, "/adapter") == {"ok": False}
    assert core.get_job(job_id).phase == JobPhase.STOPPING
