"""Back-pressure through the real Serve app: past capacity, 503 + Retry-After at once (spec and OpenAI shapes)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

FLOOD = 8
LONG = 900  # new tokens: long enough that the admitted requests are still decoding when the rest arrive


@pytest.fixture(scope="module")
def flood_url(api_url):
    """A second app whose inference deployment takes one request and queues one more."""
    from ray import serve

    from sienn_ray.api.ingress import ApiIngress
    from sienn_ray.inference.deployment import InferenceDeployment

    inference = InferenceDeployment.options(
        name="FloodInference", max_ongoing_requests=1, max_queued_requests=1, ray_actor_options={"num_cpus": 0},
    ).bind(max_batch_size=1, max_pending=1)
    serve.run(ApiIngress.options(name="FloodIngress").bind(inference), name="flood", route_prefix="/flood")
    yield api_url + "/flood"
    serve.delete("flood")


def flood(url: str, bodies: list[dict]) -> list[tuple[float, httpx.Response]]:
    """POST every body at once; (seconds until answered, response) for each."""
    def post(body: dict) -> tuple[float, httpx.Response]:
        started = time.perf_counter()
        resp = httpx.post(url, json=body, timeout=300)
        return time.perf_counter() - started, resp

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def check_refusals(answers: list[tuple[float, httpx.Response]]) -> list[httpx.Response]:
    served = [(s, r) for s, r in answers if r.status_code == 200]
    refused = [(s, r) for s, r in answers if r.status_code == 503]
    assert served and len(served) + len(refused) == len(answers), [r.text for _, r in answers]
    assert len(refused) >= FLOOD // 2
    # Refused at once: every 503 came back before the first admitted request finished decoding.
    assert max(s for s, _ in refused) < min(s for s, _ in served)
    for _, resp in refused:
        assert int(resp.headers["Retry-After"]) >= 1
    return [r for _, r in refused]


def test_test_model_past_capacity_is_503_with_retry_after_and_recovers(flood_url):
    body = {"model_name": "sienn-tiny-gpt2", "template": "raw", "prompt": "Once", "temperature": 0,
            "max_length": LONG}
    bodies = [body] * (FLOOD - 1) + [{**body, "stream": True}]
    for resp in check_refusals(flood(f"{flood_url}/api/test-model", bodies)):
        assert resp.json()["error_code"] == "SERVICE_OVERLOADED" and resp.json()["detail"]
    after = httpx.post(f"{flood_url}/api/test-model", json={**body, "max_length": 4}, timeout=300)
    assert after.status_code == 200 and after.json()["tokens_generated"] == 4


def test_v1_past_capacity_is_503_in_openai_shape(flood_url):
    body = {"model": "sienn-tiny-gpt2", "prompt": "Once", "temperature": 0, "max_tokens": LONG}
    for resp in check_refusals(flood(f"{flood_url}/v1/completions", [body] * FLOOD)):
        error = resp.json()["error"]
        assert error["code"] == "SERVICE_OVERLOADED" and error["type"] == "server_error" and error["message"]
    after = httpx.post(f"{flood_url}/v1/completions", json={**body, "max_tokens": 4}, timeout=300)
    assert after.status_code == 200 and after.json()["usage"]["completion_tokens"] == 4
