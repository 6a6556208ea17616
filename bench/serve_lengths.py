"""S4 of ``bench/serve.py``: tokens/s at several output lengths, ours next to transformers and llama.cpp.

The engine's decode step must cost the same at the 10th and the 900th token, so
tokens/s should not fall with output length (beyond what attention over a longer
context costs, which ``generate`` and llama.cpp pay too: compare the ratios).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LENGTH_PROMPT = "Count from one to one thousand, in words, separated by commas"


def s4_output_lengths(api, job_id: str, engine, ref, params_for, model_path: str, adapter: str,
                      lengths: list[int], clients: int, repeats: int, gguf: str | None, threads: int) -> dict:
    """Tokens/s at each output length: one request alone in-process, ``clients`` at once over HTTP,
    and the same lengths with Hugging Face ``generate`` (base + adapter) and llama.cpp (``--gguf``)."""
    from sienn_ray.inference.request import PromptSpec

    out: dict = {}
    for length in lengths:
        # Best of ``repeats``: machine noise only ever slows a run down.
        solo = max(_rate(lambda: engine.generate(ref, PromptSpec(text=LENGTH_PROMPT), params_for(length))
                         .tokens_generated) for _ in range(repeats))
        http = max(_rate(lambda: api.ask_full(job_id, LENGTH_PROMPT, length)[1]["tokens_generated"], clients)
                   for _ in range(repeats))
        row = {"inproc_solo_tokens_per_s": solo, f"http_{clients}_clients_tokens_per_s": http,
               "hf_generate_tokens_per_s": max(_rate(_hf_generate(model_path, adapter, length))
                                               for _ in range(repeats))}
        if gguf:
            row["llama_cpp_tokens_per_s"] = max(_rate(_llama_cpp(gguf, length, threads)) for _ in range(repeats))
        out[str(length)] = row
    first, last = out[str(lengths[0])], out[str(lengths[-1])]
    out["ratio_longest_to_shortest"] = {k: round(last[k] / first[k], 3) for k in first}
    return out


def _rate(work, clients: int = 1) -> float:
    """Tokens/s of ``clients`` threads each running ``work`` (it returns its token count) once, together."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        tokens = sum(pool.map(lambda _: work(), range(clients)))
    return round(tokens / (time.perf_counter() - started), 1)


_CACHE: dict = {}  # models loaded once per run


def _hf_generate(model_path: str, adapter: str, length: int):
    """A call of plain transformers ``generate`` (PEFT model, greedy, exactly ``length`` new tokens)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sienn_ray.data.templates import PromptTemplate, render_prompt

    if "model" not in _CACHE:
        _CACHE["tokenizer"] = AutoTokenizer.from_pretrained(model_path)
        _CACHE["model"] = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_path), adapter).eval()
    tokenizer, model = _CACHE["tokenizer"], _CACHE["model"]
    ids = tokenizer(render_prompt(PromptTemplate.load(Path(adapter)), LENGTH_PROMPT), add_special_tokens=False,
                    return_tensors="pt")

    def call() -> int:
        with torch.no_grad():
            model.generate(**ids, max_new_tokens=length, min_new_tokens=length, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id)
        return length

    if "warm" not in _CACHE:
        _CACHE["warm"] = call()
    return call


def _llama_cpp(gguf: str, length: int, threads: int):
    """A call of llama.cpp (llama-cpp-python) on a GGUF of the same base, greedy, up to ``length`` tokens."""
    from llama_cpp import Llama

    if "llama" not in _CACHE:
        _CACHE["llama"] = Llama(model_path=gguf, n_ctx=2048, n_threads=threads, verbose=False)
        _CACHE["llama"].create_completion(LENGTH_PROMPT, max_tokens=8, temperature=0.0)  # warm-up
    llm = _CACHE["llama"]
    return lambda: llm.create_completion(LENGTH_PROMPT, max_tokens=length, temperature=0.0)["usage"][
        "completion_tokens"]
