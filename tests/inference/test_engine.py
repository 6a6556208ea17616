"""The inference engine without Ray: templates, stopping, streaming, isolation under batching, LRU."""

from __future__ import annotations

import threading
import time

import pytest

from inference_fixtures import adapters, base_paths, peft_reference, trained_adapter  # noqa: F401 (fixtures)
from inference_testkit import GREEDY_TOKENS, PROMPTS, TRAINED_EXAMPLES

from pydantic import ValidationError

from sienn_ray.errors import BadRequest, ModelNotFound
from sienn_ray.inference.engine import InferenceEngine
from sienn_ray.inference.request import Completion, ModelRef, PromptSpec
from sienn_ray.schemas.generation import SamplingParams

GREEDY = SamplingParams(max_new_tokens=GREEDY_TOKENS, temperature=0)


@pytest.fixture(scope="module")
def engine():
    engine = InferenceEngine(max_adapters=8, max_batch_size=16, num_threads=1)
    yield engine
    engine.close()


def ref(adapters, adapter_id: str | None, base: str | None = None) -> ModelRef:
    if adapter_id is None:
        return ModelRef(base)
    base_path, folder = adapters[adapter_id]
    return ModelRef(base_path, adapter_id, folder)


def ask(engine, model: ModelRef, prompt: str, params: SamplingParams = GREEDY, **spec) -> Completion:
    return engine.generate(model, PromptSpec(text=prompt, **spec), params)


@pytest.mark.parametrize("adapter_id", ["g0", "g3", "l1"])
def test_greedy_matches_plain_peft_model(engine, adapters, peft_reference, adapter_id):
    base_path, folder = adapters[adapter_id]
    for prompt in PROMPTS[:2]:
        out = ask(engine, ref(adapters, adapter_id), prompt)
        assert out.text == peft_reference(base_path, folder, prompt)
        assert out.finish_reason == "length" and out.tokens_generated == GREEDY_TOKENS


def test_base_model_matches_plain_model(engine, base_paths, peft_reference):
    out = ask(engine, ModelRef(base_paths["llama"]), PROMPTS[0], input="some context")
    assert out.text == peft_reference(base_paths["llama"], None, PROMPTS[0], input="some context")


def test_adapters_change_the_output(engine, adapters, base_paths):
    texts = {ask(engine, ref(adapters, a), PROMPTS[0]).text for a in ("g0", "g1", "g2")}
    texts.add(ask(engine, ModelRef(base_paths["gpt2"]), PROMPTS[0]).text)
    assert len(texts) == 4


def test_concurrent_requests_never_see_another_adapter(adapters, base_paths):
    """Many threads over several adapters (and the bare base) each get exactly their solo greedy text."""
    engine = InferenceEngine(max_adapters=8, max_batch_size=8, num_threads=1)
    try:
        targets = ["g0", "g1", "g2", None, "g3"]
        jobs = [(targets[i % len(targets)], PROMPTS[i % len(PROMPTS)]) for i in range(20)]
        solo = {(a, p): ask(engine, ref(adapters, a, base_paths["gpt2"]), p).text for a, p in set(jobs)}
        results: dict[int, str] = {}
        barrier = threading.Barrier(len(jobs))

        def work(i: int) -> None:
            adapter_id, prompt = jobs[i]
            barrier.wait()
            results[i] = ask(engine, ref(adapters, adapter_id, base_paths["gpt2"]), prompt).text

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert len(results) == len(jobs)
        for i, (adapter_id, prompt) in enumerate(jobs):
            assert results[i] == solo[(adapter_id, prompt)], (adapter_id, prompt)
        assert engine.peak_batch > 1, "concurrent requests were not batched"
    finally:
        engine.close()


def test_lru_evicts_and_reloads_five_adapters_in_a_cache_of_two(adapters, peft_reference):
    engine = InferenceEngine(max_adapters=2, num_threads=1)
    try:
        ids = [f"g{i}" for i in range(5)]
        for _ in range(2):  # the second round reloads every adapter the first evicted
            for adapter_id in ids:
                base_path, folder = adapters[adapter_id]
                assert ask(engine, ref(adapters, adapter_id), PROMPTS[1]).text == \
                    peft_reference(base_path, folder, PROMPTS[1])
                held = sum(len(v) for v in engine.loaded().values())
                assert held <= 2
        assert engine.loaded() == {adapters["g0"][0]: ["g3", "g4"]}
    finally:
        engine.close()


def test_two_bases_with_a_cache_of_one_base(adapters, peft_reference):
    engine = InferenceEngine(max_bases=1, num_threads=1)
    try:
        for adapter_id in ["g0", "l0", "g0", "l1"]:
            base_path, folder = adapters[adapter_id]
            assert ask(engine, ref(adapters, adapter_id), PROMPTS[2]).text == \
                peft_reference(base_path, folder, PROMPTS[2])
        assert list(engine.loaded()) == [adapters["l1"][0]]
    finally:
        engine.close()


def test_unload_frees_the_adapter_and_a_later_request_reloads_it(engine, adapters):
    first = ask(engine, ref(adapters, "g4"), PROMPTS[0]).text
    engine.unload_adapter("g4")
    deadline = time.time() + 30
    while "g4" in engine.loaded()[adapters["g4"][0]] and time.time() < deadline:
        time.sleep(0.01)
    assert "g4" not in engine.loaded()[adapters["g4"][0]]
    assert ask(engine, ref(adapters, "g4"), PROMPTS[0]).text == first


def test_trained_adapter_reproduces_its_answers_and_stops_at_eos(engine, base_paths, trained_adapter):
    model = ModelRef(base_paths["gpt2"], "trained", trained_adapter)
    for instruction, response in TRAINED_EXAMPLES:
        out = ask(engine, model, instruction, SamplingParams(max_new_tokens=40, temperature=0))
        assert out.text == response
        assert out.finish_reason == "stop"
        assert out.tokens_generated < 40


def test_stop_string_ends_the_text_and_is_excluded(engine, adapters):
    full = ask(engine, ref(adapters, "g1"), PROMPTS[3]).text
    stop = full[len(full) // 2: len(full) // 2 + 3]
    params = SamplingParams(max_new_tokens=GREEDY_TOKENS, temperature=0, stop=("never-appears", stop))
    out = ask(engine, ref(adapters, "g1"), PROMPTS[3], params)
    assert out.text == full[: full.index(stop)]
    assert out.finish_reason == "stop"
    streamed = list(engine.stream(ref(adapters, "g1"), PromptSpec(text=PROMPTS[3]), params))
    assert "".join(c for c in streamed if isinstance(c, str)) == out.text


def test_streamed_chunks_concatenate_to_the_full_text(engine, adapters):
    events = list(engine.stream(ref(adapters, "g2"), PromptSpec(text=PROMPTS[0]), GREEDY))
    chunks, done = events[:-1], events[-1]
    assert isinstance(done, Completion) and all(isinstance(c, str) and c for c in chunks)
    assert len(chunks) > 3
    assert "".join(chunks) == done.text == ask(engine, ref(adapters, "g2"), PROMPTS[0]).text


def test_seeded_sampling_is_reproducible_even_when_batched(engine, adapters):
    params = SamplingParams(max_new_tokens=20, temperature=1.0, top_p=0.95, top_k=0, seed=1234)
    alone = ask(engine, ref(adapters, "g0"), PROMPTS[0], params).text
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(ask(engine, ref(adapters, "g0"), PROMPTS[0],
                                                                  params).text)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [alone] * 4
    other = ask(engine, ref(adapters, "g0"), PROMPTS[0],
                SamplingParams(max_new_tokens=20, temperature=1.0, top_p=0.95, top_k=0, seed=99)).text
    assert other != alone


def test_top_k_one_samples_the_greedy_token(engine, adapters):
    params = SamplingParams(max_new_tokens=GREEDY_TOKENS, temperature=0.8, top_k=1, seed=5)
    assert ask(engine, ref(adapters, "g3"), PROMPTS[1], params).text == ask(engine, ref(adapters, "g3"), PROMPTS[1]).text


def test_repetition_penalty_changes_greedy_output(engine, adapters):
    plain = ask(engine, ref(adapters, "g0"), PROMPTS[0]).text
    penalised = ask(engine, ref(adapters, "g0"), PROMPTS[0],
                    SamplingParams(max_new_tokens=GREEDY_TOKENS, temperature=0, repetition_penalty=3.0)).text
    assert penalised != plain


def test_chat_on_an_alpaca_job_asks_the_last_user_message(engine, adapters):
    messages = ({"role": "system", "content": "be brief"}, {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "ok"}, {"role": "user", "content": PROMPTS[2]})
    chat = engine.generate(ref(adapters, "g1"), PromptSpec(kind="chat", messages=messages), GREEDY)
    assert chat.text == ask(engine, ref(adapters, "g1"), PROMPTS[2]).text


def test_raw_prompt_is_continued_as_is(engine, base_paths):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_paths["gpt2"])
    out = engine.generate(ModelRef(base_paths["gpt2"]), PromptSpec(kind="raw", text="The river"), GREEDY)
    assert out.prompt_tokens == len(tokenizer("The river", add_special_tokens=False)["input_ids"])


def test_context_limit(engine, base_paths):
    from transformers import AutoTokenizer

    with pytest.raises(BadRequest, match="context") as info:
        ask(engine, ModelRef(base_paths["gpt2"]), "word " * 3000)
    assert info.value.extra["context_length"] == 1024 and info.value.extra["prompt_tokens"] > 3000
    assert "1024" in info.value.detail and str(info.value.extra["prompt_tokens"]) in info.value.detail
    # A budget beyond the context is clipped: the answer ends with "length" at the context's end.
    tokenizer = AutoTokenizer.from_pretrained(base_paths["gpt2"])
    near = "word " * 1000
    prompt_tokens = len(tokenizer(near, add_special_tokens=False)["input_ids"])
    assert 900 < prompt_tokens < 1020
    out = engine.generate(ModelRef(base_paths["gpt2"]), PromptSpec(kind="raw", text=near),
                          SamplingParams(max_new_tokens=500, temperature=0))
    assert out.finish_reason == "length" and out.prompt_tokens + out.tokens_generated == 1024


def test_missing_adapter_files_and_template(engine, base_paths, adapters, tmp_path):
    with pytest.raises(ModelNotFound):
        ask(engine, ModelRef(base_paths["gpt2"], "gone", str(tmp_path / "nothing")), "hi")
    import shutil

    folder = tmp_path / "no-template"
    shutil.copytree(adapters["g0"][1], folder)
    (folder / "template.json").unlink()
    with pytest.raises(ModelNotFound, match="template"):
        ask(engine, ModelRef(base_paths["gpt2"], "no-template", str(folder)), "hi")
    # The engine keeps serving after failures.
    assert ask(engine, ref(adapters, "g0"), "hi").tokens_generated == GREEDY_TOKENS


def test_invalid_sampling_parameters_list_every_problem():
    with pytest.raises(ValidationError) as info:
        SamplingParams(max_new_tokens=0, temperature=-1, top_p=0, top_k=-1, repetition_penalty=0, stop=("",))
    assert len(info.value.errors()) == 6


def test_cancelled_stream_stops_and_the_engine_keeps_serving(engine, adapters):
    before = engine.stats()["cancelled"]
    stream = engine.stream(ref(adapters, "g0"), PromptSpec(text=PROMPTS[0]),
                           SamplingParams(max_new_tokens=900, temperature=0))
    next(stream)
    stream.close()  # cancels the ticket
    assert ask(engine, ref(adapters, "g0"), PROMPTS[1]).tokens_generated == GREEDY_TOKENS
    assert engine.stats()["cancelled"] == before + 1
