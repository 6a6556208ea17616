"""The /v1 endpoints through the official ``openai`` client, streaming included."""

from __future__ import annotations

import httpx
import openai
import pytest

from inference_testkit import GREEDY_TOKENS, PROMPTS


@pytest.fixture(scope="module")
def client(api_url) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{api_url}/v1", api_key="not-needed", timeout=300, max_retries=0)


@pytest.fixture(scope="module")
def job(make_completed_job) -> str:
    return make_completed_job("sienn-tiny-gpt2", seed=200)


@pytest.fixture(scope="module")
def chat_job(make_completed_job, registry) -> tuple[str, str, str]:
    """A completed job whose recorded template is ChatML (as a chat-data job records); (id, base, adapter)."""
    from transformers import AutoTokenizer

    from sienn_ray.data.templates import template_for

    job_id = make_completed_job("sienn-tiny-llama", seed=201)
    rec = registry.get_job(job_id).result()
    template_for("chat", AutoTokenizer.from_pretrained(rec.model_path)).save(rec.adapter_path)
    return job_id, rec.model_path, rec.adapter_path


def test_models_lists_completed_jobs_and_base_models(client, job):
    ids = {model.id for model in client.models.list().data}
    assert job in ids and {"sienn-tiny-gpt2", "sienn-tiny-llama"} <= ids


def test_chat_on_an_alpaca_job_equals_test_model(client, api_url, job):
    reply = client.chat.completions.create(
        model=job, temperature=0, max_tokens=GREEDY_TOKENS,
        messages=[{"role": "system", "content": "ignored by alpaca"}, {"role": "user", "content": PROMPTS[0]}],
    )
    expected = httpx.post(f"{api_url}/api/test-model", timeout=300,
                          json={"job_id": job, "prompt": PROMPTS[0], "temperature": 0,
                                "max_length": GREEDY_TOKENS}).json()
    assert reply.choices[0].message.content == expected["generated_text"]
    assert reply.choices[0].finish_reason == "length" and reply.choices[0].message.role == "assistant"
    assert reply.usage.completion_tokens == GREEDY_TOKENS and reply.model == job


def test_chat_on_a_chat_job_uses_its_chat_template(client, chat_job):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sienn_ray.data.templates import PromptTemplate, render_chat_prompt

    job_id, base, adapter = chat_job
    messages = [{"role": "user", "content": PROMPTS[1]}]
    reply = client.chat.completions.create(model=job_id, messages=messages, temperature=0, max_tokens=GREEDY_TOKENS)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()
    text = render_chat_prompt(PromptTemplate.load(adapter), messages)
    assert text.endswith("<|im_start|>assistant\n")
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=GREEDY_TOKENS, do_sample=False)
    answer = out[0, ids["input_ids"].shape[1]:].tolist()
    ends = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
    answer = answer[: next((i for i, t in enumerate(answer) if t in ends), len(answer))]
    assert reply.choices[0].message.content == tokenizer.decode(answer, skip_special_tokens=True)


def test_chat_stream_concatenates_to_the_full_answer(client, job):
    kwargs = dict(model=job, messages=[{"role": "user", "content": PROMPTS[2]}], temperature=0,
                  max_tokens=GREEDY_TOKENS)
    full = client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == GREEDY_TOKENS


def test_completions_continue_the_raw_prompt_streaming_or_not(client, job):
    kwargs = dict(model=job, prompt="The river ran", temperature=0, max_tokens=12)
    full = client.completions.create(**kwargs)
    assert full.choices[0].finish_reason == "length" and full.usage.completion_tokens == 12
    streamed = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kwargs))
    assert streamed == full.choices[0].text


def test_completions_on_a_base_model_with_stop_and_extensions(client):
    full = client.completions.create(model="sienn-tiny-gpt2", prompt="Once", temperature=0, max_tokens=16).choices[0]
    stop = full.text[4:6]
    cut = client.completions.create(model="sienn-tiny-gpt2", prompt="Once", temperature=0, max_tokens=16,
                                    stop=[stop], extra_body={"top_k": 5, "repetition_penalty": 1.0}).choices[0]
    assert cut.text == full.text[: full.text.index(stop)] and cut.finish_reason == "stop"


def test_seed_makes_sampling_reproducible(client, job):
    kwargs = dict(model=job, messages=[{"role": "user", "content": "hi"}], temperature=1.0, max_tokens=12, seed=3)
    assert client.chat.completions.create(**kwargs).choices[0].message.content == \
        client.chat.completions.create(**kwargs).choices[0].message.content


def test_errors_use_openai_shape(client, job):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=job, messages=[{"role": "user", "content": "hi"}], n=2)
    assert "n" in info.value.body["message"]
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="job_0123456789abcdef", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "JOB_NOT_FOUND"
    with pytest.raises(openai.NotFoundError) as info:
        client.completions.create(model="no-such-model", prompt="hi")
    assert info.value.body["code"] == "MODEL_NOT_FOUND"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=job, prompt="hi", logprobs=2)


def test_no_max_tokens_gets_the_bounded_default(client, api_url, job):
    from sienn_ray.schemas.generation import DEFAULT_MAX_NEW_TOKENS

    chat = client.chat.completions.create(model=job, messages=[{"role": "user", "content": "hi"}], temperature=0)
    assert chat.choices[0].finish_reason == "length" and chat.usage.completion_tokens == DEFAULT_MAX_NEW_TOKENS
    resp = httpx.post(f"{api_url}/v1/completions", timeout=300,
                      json={"model": job, "prompt": "word " * 700, "temperature": 0, "max_tokens": None})
    assert resp.status_code == 200, resp.text
    usage = resp.json()["usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] == 1024  # what fits, below the default
    assert client.completions.create(model=job, prompt="hi", temperature=0).usage.completion_tokens == 16


def test_a_prompt_beyond_the_context_is_400_naming_the_numbers(client, job):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=job, prompt="word " * 3000, max_tokens=4)
    assert info.value.body["code"] == "VALIDATION_ERROR" and "1024" in info.value.body["message"]


def test_unknown_openai_parameters_are_ignored(api_url, job):
    resp = httpx.post(f"{api_url}/v1/chat/completions", timeout=300, json={
        "model": job, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0,
        "logit_bias": {}, "store": False, "metadata": {"k": "v"}, "some_future_param": 1})
    assert resp.status_code == 200, resp.text
    assert resp.json()["object"] == "chat.completion"
