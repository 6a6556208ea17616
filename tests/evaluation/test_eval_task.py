"""The evaluation as a Ray task on the session's cluster: it writes the report, and failures come back recorded."""

from __future__ import annotations

from sienn_ray import paths
from sienn_ray.evaluation.reports import read_report
from sienn_ray.evaluation.task import evaluate_job
from sienn_ray.schemas.common import new_id
from sienn_ray.schemas.evaluation import EvaluationSpec

from evaluation_fixtures import demo_file, evaluated_job, gpt2_path, random_adapter  # noqa: F401 (fixtures)


def test_the_task_writes_the_report_next_to_the_job(evaluated_job):
    job_id, spec, summary = evaluated_job["job_id"], evaluated_job["spec"], evaluated_job["summary"]
    assert summary.status == "completed" and summary.error is None, summary
    assert summary.report_path == str(paths.job_evaluation(job_id))
    report = read_report(job_id)
    assert report.status == "completed" and report.source == "validation_split"
    assert report.rows_used == spec.rows and len(spec.rows) == 6 and summary.rows_used == 6
    assert len(report.rows) == 3 and all(r.reference for r in report.rows)
    assert (summary.base, summary.tuned, summary.deltas) == (report.base, report.tuned, report.deltas)
    assert report.tuned.eval_loss != report.base.eval_loss
    assert not list(paths.job_dir(job_id).glob(".evaluation-*"))  # the atomic write left no temp file


def _spec(**kw) -> EvaluationSpec:
    return EvaluationSpec(**{"job_id": new_id("job"), "eval_samples": 2, "max_new_tokens": 4} | kw)


def test_a_failed_evaluation_comes_back_recorded_not_raised(ray_session, gpt2_path, demo_file, tmp_path):
    spec = _spec(base_model_path=gpt2_path, adapter_path=str(tmp_path / "gone"), dataset_path=demo_file, rows=[0])
    summary = evaluate_job(spec, timeout_s=300)
    assert summary.status == "failed" and "adapter_config.json" in summary.error
    assert read_report(spec.job_id).error == summary.error


def test_a_task_out_of_time_is_recorded_by_the_caller(ray_session, gpt2_path, random_adapter, demo_file):
    spec = _spec(base_model_path=gpt2_path, adapter_path=random_adapter, dataset_path=demo_file, rows=[0, 1])
    summary = evaluate_job(spec, timeout_s=0.05)
    assert summary.status == "failed" and "did not finish within 0.05 s" in summary.error
    report = read_report(spec.job_id)
    assert report.status == "failed" and report.error == summary.error
