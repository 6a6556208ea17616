"""POST /api/test-model against the real Serve app, and the inference deployment's adapter LRU."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from inference_fixtures import base_paths, peft_reference  # noqa: F401 (fixtures)
from inference_testkit import GREEDY_TOKENS, PROMPTS


def ask(api_url: str, **body) -> httpx.Response:
    return httpx.post(f"{api_url}/api/test-model", json=body, timeout=300)


def greedy(api_url: str, job_id: str, prompt: str, **extra) -> dict:
    resp = ask(api_url, job_id=job_id, prompt=prompt, temperature=0, max_length=GREEDY_TOKENS, **extra)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def jobs(make_completed_job) -> list[str]:
    """Five completed jobs on the gpt2 base, each with its own random adapter."""
    return [make_completed_job("sienn-tiny-gpt2", seed=100 + i) for i in range(5)]


@pytest.fixture(scope="module")
def job_files(registry, jobs) -> dict[str, tuple[str, str]]:
    """job id -> (base path, adapter folder) from the registry's records."""
    out = {}
    for job_id in jobs:
        rec = registry.get_job(job_id).result()
        out[job_id] = (rec.model_path, rec.adapter_path)
    return out


def test_greedy_answer_equals_the_plain_peft_model(api_url, jobs, job_files, peft_reference):
    body = greedy(api_url, jobs[0], PROMPTS[0], input="with some input")
    assert body["generated_text"] == peft_reference(*job_files[jobs[0]], PROMPTS[0], input="with some input")
    assert body["prompt"] == PROMPTS[0] and body["model_id"] == jobs[0]
    assert body["tokens_generated"] == GREEDY_TOKENS and body["finish_reason"] == "length"
    assert body["inference_time"] > 0 and body["prompt_tokens"] > 0


def test_spec_defaults_sample_and_seed_reproduces(api_url, jobs):
    first = ask(api_url, job_id=jobs[1], prompt=PROMPTS[1], seed=7, max_length=16).json()
    again = ask(api_url, job_id=jobs[1], prompt=PROMPTS[1], seed=7, max_length=16).json()
    assert first["generated_text"] == again["generated_text"]
    assert first["tokens_generated"] <= 16


def test_concurrent_requests_over_five_jobs_each_get_their_own_adapter(api_url, jobs):
    work = [(jobs[i % 5], PROMPTS[i % len(PROMPTS)]) for i in range(20)]
    solo = {(j, p): greedy(api_url, j, p)["generated_text"] for j, p in set(work)}
    with ThreadPoolExecutor(len(work)) as pool:
        answers = list(pool.map(lambda jp: greedy(api_url, *jp)["generated_text"], work))
    assert answers == [solo[jp] for jp in work]


def test_base_model_by_name_for_before_and_after(api_url, base_paths, peft_reference):
    resp = ask(api_url, model_name="sienn-tiny-llama", prompt=PROMPTS[2], temperature=0, max_length=GREEDY_TOKENS)
    assert resp.status_code == 200, resp.text
    assert resp.json()["generated_text"] == peft_reference(base_paths["llama"], None, PROMPTS[2])
    assert resp.json()["model_id"] == "sienn-tiny-llama"


def test_stop_strings_are_excluded(api_url, jobs):
    full = greedy(api_url, jobs[2], PROMPTS[3])["generated_text"]
    stop = full[len(full) // 2: len(full) // 2 + 2]
    body = greedy(api_url, jobs[2], PROMPTS[3], stop=[stop])
    assert body["generated_text"] == full[: full.index(stop)] and body["finish_reason"] == "stop"


def read_sse(resp: httpx.Response) -> list[tuple[str, dict]]:
    events = []
    for block in resp.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_stream_sends_token_events_then_the_full_response(api_url, jobs):
    plain = greedy(api_url, jobs[3], PROMPTS[0])
    resp = ask(api_url, job_id=jobs[3], prompt=PROMPTS[0], temperature=0, max_length=GREEDY_TOKENS, stream=True)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = read_sse(resp)
    tokens = [data["text"] for kind, data in events if kind == "token"]
    kind, done = events[-1]
    assert kind == "done" and len(tokens) > 3
    assert "".join(tokens) == done["generated_text"] == plain["generated_text"]
    assert set(done) == set(plain) and done["finish_reason"] == plain["finish_reason"]


def test_unknown_and_malformed_jobs_are_404(api_url):
    for job_id in ("job_0123456789abcdef", "job_xyz789", "../../etc"):
        resp = ask(api_url, job_id=job_id, prompt="hi")
        assert resp.status_code == 404, resp.text
        assert resp.json()["error_code"] == "JOB_NOT_FOUND"
    resp = ask(api_url, job_id="job_0123456789abcdef", prompt="hi", stream=True)
    assert resp.status_code == 404 and resp.json()["error_code"] == "JOB_NOT_FOUND"


def test_a_job_that_is_not_completed_is_409_with_its_status(api_url, registry, make_completed_job):
    from sienn_ray.schemas.common import new_id, utcnow
    from sienn_ray.schemas.jobs import JobRecord, TrainingConfig

    done = registry.get_job(make_completed_job("sienn-tiny-gpt2", seed=1)).result()
    now = utcnow()
    pending = JobRecord(job_id=new_id("job"), model_name=done.model_name, model_path=done.model_path,
                        dataset_id=done.dataset_id, config=TrainingConfig(), total_epochs=1, created_at=now,
                        updated_at=now)
    registry.adopt_job(pending, "test").result()  # held by this test: never launched from the queue
    try:
        resp = ask(api_url, job_id=pending.job_id, prompt="hi")
    finally:
        registry.finish(pending.job_id, "cancelled", "test over").result()
    assert resp.status_code == 409, resp.text
    assert "pending" in resp.json()["detail"] and resp.json()["job_status"] == "pending"


def test_a_completed_job_without_adapter_files_is_model_not_found(api_url, registry, make_completed_job):
    job_id = make_completed_job("sienn-tiny-gpt2", seed=2)
    shutil.rmtree(registry.get_job(job_id).result().adapter_path)
    resp = ask(api_url, job_id=job_id, prompt="hi")
    assert resp.status_code == 404 and resp.json()["error_code"] == "MODEL_NOT_FOUND", resp.text


def test_out_of_range_parameters_are_400_listing_every_problem(api_url, jobs):
    resp = ask(api_url, job_id=jobs[0], prompt="hi", max_length=0, temperature=5, top_p=0, top_k=-1,
               repetition_penalty=0, stop=[""])
    assert resp.status_code == 400
    body = resp.json()
    assert body["error_code"] == "VALIDATION_ERROR" and len(body["errors"]) == 6
    for field in ("max_length", "temperature", "top_p", "top_k", "repetition_penalty", "stop"):
        assert any(field in problem for problem in body["errors"]), field
    assert ask(api_url, job_id=jobs[0], model_name="sienn-tiny-gpt2", prompt="hi").status_code == 400
    assert ask(api_url, prompt="hi").status_code == 400
    assert ask(api_url, job_id=jobs[0], prompt="hi", max_tokens=5).status_code == 400  # typo of max_length


def test_errors_raised_in_the_replica_keep_their_status(api_url, jobs):
    resp = ask(api_url, job_id=jobs[0], prompt="word " * 3000)
    assert resp.status_code == 400 and "context" in resp.json()["detail"], resp.text
    body = resp.json()
    assert body["error_code"] == "VALIDATION_ERROR" and body["context_length"] == 1024
    assert str(body["prompt_tokens"]) in body["detail"] and "1024" in body["detail"]
    resp = ask(api_url, model_name="no-such-model", prompt="hi")
    assert resp.status_code == 404 and resp.json()["error_code"] == "MODEL_NOT_FOUND"


def test_one_replica_serves_five_jobs_with_room_for_two_adapters(api_url, jobs, job_files, peft_reference):
    """A separate small deployment (max_adapters=2): Serve's LRU evicts, the engine frees and reloads."""
    from ray import serve

    from sienn_ray.inference.deployment import InferenceDeployment

    handle = serve.run(
        InferenceDeployment.options(name="InferenceLRU", ray_actor_options={"num_cpus": 0}).bind(max_adapters=2),
        name="inference-lru", route_prefix=None,
    )
    try:
        for _ in range(2):
            for job_id in jobs:
                base, adapter = job_files[job_id]
                call = {"model_id": job_id, "base_path": base, "adapter_path": adapter, "text": PROMPTS[1],
                        "temperature": 0, "max_new_tokens": GREEDY_TOKENS}
                out = handle.options(multiplexed_model_id=job_id).generate.remote(call).result(timeout_s=300)
                assert out["text"] == peft_reference(base, adapter, PROMPTS[1])
                held = handle.loaded.remote().result(timeout_s=60)
                assert sum(len(v) for v in held.values()) <= 2, held
        assert held == {job_files[jobs[0]][0]: jobs[3:]}
    finally:
        serve.delete("inference-lru")


def test_a_denormal_temperature_is_answered_and_fails_no_request_batched_with_it(api_url, jobs):
    """temperature 1e-45 was a 500, and every request prefilled with it failed too."""
    bodies = [{"job_id": jobs[1], "prompt": PROMPTS[i % 4], "max_length": 8, "seed": i,
               "temperature": 1e-45 if i % 3 == 0 else 0.8} for i in range(9)]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: ask(api_url, **body), bodies))
    assert [a.status_code for a in answers] == [200] * len(bodies), [a.text for a in answers if a.status_code != 200]
    greedy_text = ask(api_url, job_id=jobs[1], prompt=PROMPTS[0], max_length=8, temperature=0).json()["generated_text"]
    assert answers[0].json()["generated_text"] == greedy_text  # a vanishing temperature is greedy


def test_a_client_leaving_mid_stream_cancels_its_generation(api_url, jobs):
    from ray import serve

    replica = serve.get_deployment_handle("InferenceDeployment", app_name="sienn")
    before = replica.stats.remote().result(timeout_s=60)["cancelled"]
    body = {"job_id": jobs[4], "prompt": PROMPTS[0], "temperature": 0, "max_length": 4000, "stream": True}
    with httpx.stream("POST", f"{api_url}/api/test-model", json=body, timeout=300) as resp:
        assert resp.status_code == 200
        next(resp.iter_text())  # the first token event, then hang up
    deadline = time.time() + 60
    while replica.stats.remote().result(timeout_s=60)["cancelled"] == before and time.time() < deadline:
        time.sleep(0.05)
    assert replica.stats.remote().result(timeout_s=60)["cancelled"] == before + 1
    assert greedy(api_url, jobs[4], PROMPTS[1])["tokens_generated"] == GREEDY_TOKENS
