"""Run llama.cpp (llama-cpp-python) on one GGUF and print JSON; always run in a subprocess.

llama.cpp aborts the whole process on a bad file, so tests call ``probe`` (a
subprocess with GGML_NO_BACKTRACE=1 and a timeout) instead of importing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def probe(model: str, *, prompt_ids: list[int] | None = None, n_greedy: int = 0, texts: list[str] = (),
          f32_cache: bool = False, timeout: float = 180) -> dict:
    """Load ``model`` with llama.cpp and report, as JSON-able lists:

    ``logits`` for every position of ``prompt_ids``, ``greedy``: ``n_greedy`` ids continuing it,
    ``tokens`` of each of ``texts`` (no BOS) and ``tokens_default`` (BOS as the file says).
    ``f32_cache`` keeps the KV cache in f32 instead of llama.cpp's default f16.
    """
    args = {"model": model, "prompt_ids": prompt_ids, "n_greedy": n_greedy, "texts": list(texts),
            "f32_cache": f32_cache}
    env = dict(os.environ, GGML_NO_BACKTRACE="1")
    done = subprocess.run([sys.executable, __file__, json.dumps(args)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"llama.cpp failed on {model} (rc {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def llama_quantize(src: str, dst: str, ftype: int, *, output_type: int | None = None,
                   token_embd_type: int | None = None, timeout: float = 180) -> None:
    """llama.cpp's own quantizer (``llama_model_quantize``, "pure": one type for all matrices) on ``src``."""
    args = {"quantize": [src, dst, ftype, output_type, token_embd_type]}
    env = dict(os.environ, GGML_NO_BACKTRACE="1")
    done = subprocess.run([sys.executable, __file__, json.dumps(args)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"llama.cpp quantize failed (rc {done.returncode}):\n{done.stderr[-3000:]}")


def _quantize(src: str, dst: str, ftype: int, output_type: int | None, token_embd_type: int | None) -> dict:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.pure, params.nthread = ftype, True, 1
    if output_type is not None:
        params.output_tensor_type = output_type
    if token_embd_type is not None:
        params.token_embedding_type = token_embd_type
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize returned {rc}")
    return {}


def _main(args: dict) -> dict:
    if "quantize" in args:
        return _quantize(*args["quantize"])
    import numpy as np
    from llama_cpp import Llama

    cache = {"type_k": 0, "type_v": 0} if args["f32_cache"] else {}  # 0 = GGML_TYPE_F32
    llm = Llama(model_path=args["model"], n_ctx=256, n_batch=256, n_threads=1, logits_all=True,
                vocab_only=not args["prompt_ids"], verbose=False, **cache)
    out: dict = {"tokens": [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in args["texts"]],
                 "tokens_default": [llm.tokenize(t.encode("utf-8"), add_bos=True, special=True) for t in args["texts"]]}
    if args["prompt_ids"]:
        llm.eval(args["prompt_ids"])
        out["logits"] = np.asarray(llm.scores[:llm.n_tokens], dtype=np.float64).tolist()
        greedy = []
        for _ in range(args["n_greedy"]):
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            greedy.append(token)
            llm.eval([token])
        out["greedy"] = greedy
    llm.close()
    return out


if __name__ == "__main__":
    print(json.dumps(_main(json.loads(sys.argv[1]))))
