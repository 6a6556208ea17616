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
        solo_tokens, solo_s = 0, 0.0
        for _ in range(repeats):
            started = time.perf_counter()
            done = engine.generate(ref, PromptSpec(text=LENGTH_PROMPT), params_for(length))
            solo_s += time.perf_counter() - started
            solo_tokens += done.tokens_generated
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            bodies = list(pool.map(lambda _: api.ask_full(job_id, LENGTH_PROMPT, length)[1], range(clients)))
        http_s = time.perf_counter() - started
        row = {"inproc_solo_tokens_per_s": round(solo_tokens / solo_s, 1),
               "inproc_solo_mean_tokens": round(solo_tokens / repeats, 1),
               f"http_{clients}_clients_tokens_per_s": round(sum(b["tokens_generated"] for b in bodies) / http_s, 1)}
        row.update(_hf_generate(model_path, adapter, length, repeats))
        if gguf:
            row.update(_llama_cpp(gguf, length, repeats, threads))
        out[str(length)] = row
    first, last = out[str(lengths[0])], out[str(lengths[-1])]
    out["ratio_longest_to_shortest"] = {k: round(last[k] / first[k], 3) for k in first if k.endswith("tokens_per_s")}
    return out


_HF_CACHE: dict = {}


def _hf_generate(model_path: str, adapter: str, length: int, repeats: int) -> dict:
    """Plain transformers ``generate`` (PEFT model, greedy, exactly ``length`` new tokens) in this process."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sienn_ray.data.templates import PromptTemplate, render_prompt

    if "model" not in _HF_CACHE:
        _HF_CACHE["tokenizer"] = AutoTokenizer.from_pretrained(model_path)
        _HF_CACHE["model"] = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_path), adapter).eval()
    tokenizer, model = _HF_CACHE["tokenizer"], _HF_CACHE["model"]
    ids = tokenizer(render_prompt(PromptTemplate.load(Path(adapter)), LENGTH_PROMPT), add_special_tokens=False,
                    return_tensors="pt")
    started = time.perf_counter()
    with torch.no_grad():
        for _ in range(repeats):
            model.generate(**ids, max_new_tokens=length, min_new_tokens=length, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id)
    return {"hf_generate_tokens_per_s": round(length * repeats / (time.perf_counter() - started), 1)}


def _llama_cpp(gguf: str, length: int, repeats: int, threads: int) -> dict:
    """llama.cpp (llama-cpp-python) on a GGUF of the same base, greedy, up to ``length`` tokens."""
    from llama_cpp import Llama

    if "llama" not in _HF_CACHE:
        _HF_CACHE["llama"] = Llama(model_path=gguf, n_ctx=2048, n_threads=threads, verbose=False)
    llm = _HF_CACHE["llama"]
    tokens, started = 0, time.perf_counter()
    for _ in range(repeats):
        out = llm.create_completion(LENGTH_PROMPT, max_tokens=length, temperature=0.0)
        tokens += out["usage"]["completion_tokens"]
    return {"llama_cpp_tokens_per_s": round(tokens / (time.perf_counter() - started), 1)}
