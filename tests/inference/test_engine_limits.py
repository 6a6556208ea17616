"""The engine under hostile input and load: extreme sampling values, long outputs, default budgets, a full queue."""

from __future__ import annotations

import pickle
import queue
import threading

import pytest

from inference_fixtures import adapters, base_paths  # noqa: F401 (fixtures)
from inference_testkit import PROMPTS

from sienn_ray.errors import Overloaded
from sienn_ray.inference.engine import InferenceEngine
from sienn_ray.inference.request import Completion, ModelRef, PromptSpec, Started
from sienn_ray.schemas.generation import DEFAULT_MAX_NEW_TOKENS, SamplingParams

EXTREME = [SamplingParams(max_new_tokens=12, temperature=1e-45, seed=1),
           SamplingParams(max_new_tokens=12, temperature=5e-324, top_p=1e-300, seed=2),
           SamplingParams(max_new_tokens=12, temperature=2.0, top_k=100_000, repetition_penalty=1e-300, seed=3),
           SamplingParams(max_new_tokens=12, temperature=1e-300, top_k=1, repetition_penalty=10, seed=4)]


@pytest.fixture(scope="module")
def engine():
    engine = InferenceEngine(max_batch_size=16, num_threads=1)
    yield engine
    engine.close()


def test_extreme_sampling_values_fail_no_one_in_their_batch(engine, adapters):
    """temperature 1e-45 was a 500 that failed every request batched with it."""
    base_path, folder = adapters["g0"]
    model = ModelRef(base_path, "g0", folder)
    normal = [SamplingParams(max_new_tokens=12, temperature=0.8, seed=s) for s in range(4)]
    solo = [engine.generate(model, PromptSpec(text=PROMPTS[0]), p).text for p in normal]
    results: dict[int, Completion | BaseException] = {}
    work = normal + EXTREME
    barrier = threading.Barrier(len(work))

    def ask(i: int) -> None:
        barrier.wait()
        try:
            results[i] = engine.generate(model, PromptSpec(text=PROMPTS[0]), work[i])
        except BaseException as err:  # noqa: BLE001 - the test reports it
            results[i] = err

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert all(isinstance(results[i], Completion) for i in range(len(work))), results
    assert [results[i].text for i in range(4)] == solo
    assert engine.peak_batch > 1


def test_decoding_cost_does_not_grow_with_the_output(engine, base_paths, monkeypatch):
    """The whole output used to be decoded again at every token (quadratic in its length)."""
    from transformers import AutoTokenizer

    tokenizer_class = type(AutoTokenizer.from_pretrained(base_paths["gpt2"]))
    real, sizes = tokenizer_class.decode, []

    def counting(self, ids, *args, **kwargs):
        sizes.append(len(ids) if isinstance(ids, list) else 1)
        return real(self, ids, *args, **kwargs)

    monkeypatch.setattr(tokenizer_class, "decode", counting)
    out = engine.generate(ModelRef(base_paths["gpt2"]), PromptSpec(kind="raw", text="Once upon a time"),
                          SamplingParams(max_new_tokens=300, temperature=0))
    assert out.finish_reason == "length" and out.tokens_generated == 300
    assert max(sizes, default=0) <= 4


def test_no_limit_means_the_bounded_default_or_what_fits(engine, base_paths):
    from transformers import AutoTokenizer

    model = ModelRef(base_paths["gpt2"])
    unbounded = SamplingParams(max_new_tokens=None, temperature=0)
    short = engine.generate(model, PromptSpec(kind="raw", text="Once upon a time"), unbounded)
    assert short.finish_reason == "length" and short.tokens_generated == DEFAULT_MAX_NEW_TOKENS
    tokenizer = AutoTokenizer.from_pretrained(base_paths["gpt2"])
    long_prompt = "word " * 700
    prompt_tokens = len(tokenizer(long_prompt, add_special_tokens=False)["input_ids"])
    assert 1024 - prompt_tokens < DEFAULT_MAX_NEW_TOKENS
    near = engine.generate(model, PromptSpec(kind="raw", text=long_prompt), unbounded)
    assert near.finish_reason == "length" and near.prompt_tokens + near.tokens_generated == 1024


def test_a_full_queue_refuses_at_once_with_a_retry_hint_and_recovers(base_paths):
    engine = InferenceEngine(max_batch_size=1, max_pending=1, num_threads=1)
    model, prompt = ModelRef(base_paths["gpt2"]), PromptSpec(kind="raw", text="Once")
    try:
        events: queue.Queue = queue.Queue()
        running = engine.submit(model, prompt, SamplingParams(max_new_tokens=1000, temperature=0), events.put)
        assert isinstance(events.get(timeout=120), Started)  # the worker holds it: the queue is empty again
        waiting: queue.Queue = queue.Queue()
        engine.submit(model, prompt, SamplingParams(max_new_tokens=4, temperature=0), waiting.put)
        with pytest.raises(Overloaded) as info:
            engine.submit(model, prompt, SamplingParams(max_new_tokens=4, temperature=0), lambda event: None)
        assert info.value.status_code == 503 and info.value.error_code == "SERVICE_OVERLOADED"
        assert int(info.value.headers["Retry-After"]) >= 1
        assert engine.stats()["pending"] == 1
        running.cancel()
        while not isinstance(event := waiting.get(timeout=120), Completion):
            assert not isinstance(event, BaseException), event
        assert engine.generate(model, prompt, SamplingParams(max_new_tokens=4, temperature=0)).tokens_generated == 4
    finally:
        engine.close()


def test_overloaded_survives_pickling_with_its_retry_after_header():
    err = pickle.loads(pickle.dumps(Overloaded("full", retry_after=2.2)))
    assert isinstance(err, Overloaded) and err.headers == {"Retry-After": "3"}
    assert err.to_body() == {"retry_after": 2.2}
