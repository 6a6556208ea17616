"""A job trained through the API ends with its evaluation: phase `evaluating`, then completed with figures."""

from __future__ import annotations

import json

import httpx
import pytest
from helpers import wait_for_job

from sienn_ray.data.demo import demo_records

# Short but real: one epoch of the toy base, a few greedy answers.
CONFIG = {"num_epochs": 1, "batch_size": 4, "learning_rate": 0.005, "max_length": 128, "lora_r": 8,
          "lora_alpha": 16, "lora_dropout": 0.0, "eval_samples": 3}


def _upload(api_url: str, records: list[dict], name: str) -> str:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    resp = httpx.post(f"{api_url}/api/upload-dataset", files={"file": (f"{name}.jsonl", data)}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()["dataset_id"]


def _start(api_url: str, **body) -> dict:
    resp = httpx.post(f"{api_url}/api/start-finetuning", json={"model_name": "sienn-tiny-gpt2", **body}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _events(api_url: str, job_id: str) -> list[dict]:
    return httpx.get(f"{api_url}/api/jobs/{job_id}/events", timeout=30).json()["events"]


@pytest.mark.slow
def test_a_job_with_a_validation_split_ends_with_its_evaluation(api_url):
    dataset_id = _upload(api_url, demo_records() * 2, "demo60")
    job = _start(api_url, dataset_id=dataset_id, config=CONFIG | {"validation_split": 0.1})
    status = wait_for_job(api_url, job["job_id"])
    assert status["status"] == "completed" and status["phase"] == "done", status
    kinds = [e["type"] for e in _events(api_url, job["job_id"])]
    assert kinds.index("evaluation_started") < kinds.index("evaluated") < kinds.index("completed")
    assert status["evaluation"]["status"] == "completed" and status["evaluation"]["rows_used"] == 6
    report = httpx.get(f"{api_url}/api/jobs/{job['job_id']}/evaluation", timeout=30).json()
    assert report["source"] == "validation_split" and len(report["rows"]) == 3
    assert report["tuned"]["eval_loss"] < report["base"]["eval_loss"]  # one epoch already fits the demo better
    assert "evaluated against the base on 6 held-out rows" in status["message"]


@pytest.mark.slow
def test_an_eval_dataset_is_evaluated_whole_and_a_job_without_held_out_rows_is_not(api_url):
    train_id = _upload(api_url, demo_records(), "demo30")  # 30 rows: no default validation split
    eval_id = _upload(api_url, demo_records()[:5], "demo5")
    plain = _start(api_url, dataset_id=train_id, config=CONFIG)
    with_eval = _start(api_url, dataset_id=train_id, eval_dataset_id=eval_id, config=CONFIG)
    plain_status = wait_for_job(api_url, plain["job_id"])
    assert plain_status["status"] == "completed" and plain_status["evaluation"] is None
    assert httpx.get(f"{api_url}/api/jobs/{plain['job_id']}/evaluation", timeout=30).status_code == 404
    status = wait_for_job(api_url, with_eval["job_id"])
    assert status["status"] == "completed" and status["eval_dataset_id"] == eval_id
    report = httpx.get(f"{api_url}/api/jobs/{with_eval['job_id']}/evaluation", timeout=30).json()
    assert report["source"] == "eval_dataset" and report["rows_used"] == [0, 1, 2, 3, 4]


def test_an_unknown_eval_dataset_is_a_404_and_queues_nothing(api_url):
    train_id = _upload(api_url, demo_records(), "demo30")
    before = httpx.get(f"{api_url}/api/jobs", timeout=30).json()["total"]
    resp = httpx.post(f"{api_url}/api/start-finetuning", timeout=60, json={
        "model_name": "sienn-tiny-gpt2", "dataset_id": train_id, "eval_dataset_id": "ds_00000000deadbeef",
        "config": CONFIG})
    assert resp.status_code == 404 and resp.json()["error_code"] == "DATASET_NOT_FOUND", resp.text
    assert httpx.get(f"{api_url}/api/jobs", timeout=30).json()["total"] == before
