"""GET /api/jobs/{job_id}/evaluation and GET /api/jobs/compare through the real Serve app."""

from __future__ import annotations

import httpx
import pytest

from sienn_ray.evaluation.reports import read_report

from evaluation_fixtures import demo_file, evaluated_job  # noqa: F401 (fixtures)

UNKNOWN = "job_00000000deadbeef"


def _get(api_url: str, path: str, **params) -> httpx.Response:
    return httpx.get(f"{api_url}{path}", params=params, timeout=60)


def _assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    body = resp.json()
    assert resp.status_code == status and body["error_code"] == code, (resp.status_code, body)
    assert body["detail"] and body["timestamp"]
    return body


def test_the_evaluation_of_a_job(api_url, evaluated_job):
    job_id = evaluated_job["job_id"]
    resp = _get(api_url, f"/api/jobs/{job_id}/evaluation")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body == read_report(job_id).model_dump(mode="json") | {
        "started_at": body["started_at"], "finished_at": body["finished_at"]}
    assert body["status"] == "completed" and len(body["rows"]) == 3
    row = body["rows"][0]
    assert set(row) == {"row", "prompt", "input", "reference", "base_output", "tuned_output", "base_scores",
                        "tuned_scores"}
    assert set(row["tuned_scores"]) == {"exact_match", "token_f1", "rouge_l"}
    assert body["base"]["eval_loss"] > 0 and body["tuned"]["perplexity"] > 1
    assert body["deltas"]["eval_loss"] == pytest.approx(body["tuned"]["eval_loss"] - body["base"]["eval_loss"])


def test_no_evaluation_and_no_job_are_different_404s(api_url, make_completed_job):
    fresh = make_completed_job()
    body = _assert_error(_get(api_url, f"/api/jobs/{fresh}/evaluation"), 404, "EVALUATION_NOT_FOUND")
    assert fresh in body["detail"]
    _assert_error(_get(api_url, f"/api/jobs/{UNKNOWN}/evaluation"), 404, "JOB_NOT_FOUND")
    _assert_error(_get(api_url, "/api/jobs/..secret/evaluation"), 404, "JOB_NOT_FOUND")  # never a path


def test_jobs_side_by_side(api_url, evaluated_job, make_completed_job):
    job_id, other = evaluated_job["job_id"], make_completed_job()
    resp = _get(api_url, "/api/jobs/compare", ids=f"{other}, {job_id}")
    assert resp.status_code == 200, resp.text
    jobs = resp.json()["jobs"]
    assert [j["job_id"] for j in jobs] == [other, job_id]  # the order asked
    assert jobs[0]["evaluation"] is None and jobs[0]["status"] == "completed"
    evaluation = jobs[1]["evaluation"]
    report = read_report(job_id).model_dump(mode="json")
    assert evaluation["status"] == "completed" and evaluation["rows_used"] == 6
    assert (evaluation["base"], evaluation["tuned"], evaluation["deltas"]) == \
        (report["base"], report["tuned"], report["deltas"])
    assert jobs[1]["config"]["lora_r"] == 32 and "learning_rate" in jobs[1]["config"] and "metrics" in jobs[1]


def test_compare_refuses_malformed_lists(api_url, evaluated_job):
    job_id = evaluated_job["job_id"]
    assert _assert_error(_get(api_url, "/api/jobs/compare"), 400, "VALIDATION_ERROR")["errors"]
    for ids in ("", f"{job_id},,{job_id}", ",".join([job_id] + [f"job_{i:016x}" for i in range(20)])):
        body = _assert_error(_get(api_url, "/api/jobs/compare", ids=ids), 400, "VALIDATION_ERROR")
        assert body["errors"], body


def test_compare_names_every_unknown_job(api_url, evaluated_job):
    resp = _get(api_url, "/api/jobs/compare", ids=f"{evaluated_job['job_id']},{UNKNOWN},not-an-id")
    body = _assert_error(resp, 404, "JOB_NOT_FOUND")
    assert UNKNOWN in body["detail"] and "not-an-id" in body["detail"]
    assert body["errors"] == [f"{UNKNOWN}: not found", "not-an-id: not found"]
