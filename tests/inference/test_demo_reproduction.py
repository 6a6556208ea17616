"""The must-show: the 30-row demo, trained with the demo settings, answered through /api/test-model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


@pytest.mark.slow
def test_test_model_reproduces_the_demo_outputs_and_stops_by_itself(api_url, demo_job):
    from sienn_ray.data.demo import demo_records

    records = demo_records()

    def ask(rec: dict) -> dict:
        resp = httpx.post(f"{api_url}/api/test-model", timeout=300, json={
            "job_id": demo_job["job_id"], "prompt": rec["instruction"], "input": rec["input"],
            "temperature": 0, "max_length": 64})
        assert resp.status_code == 200, resp.text
        return resp.json()

    with ThreadPoolExecutor(8) as pool:  # concurrently, so batching is part of what is checked
        answers = list(pool.map(ask, records))
    exact = sum(a["generated_text"] == r["output"] for a, r in zip(answers, records))
    stopped = sum(a["finish_reason"] == "stop" for a in answers)
    misses = [(r["instruction"], r["output"], a["generated_text"]) for a, r in zip(answers, records)
              if a["generated_text"] != r["output"]]
    print(f"demo via /api/test-model: {exact}/30 exact, {stopped}/30 stopped by EOS")
    assert exact >= 27 and stopped >= 27, misses
