"""llama.cpp's own chat handling of a GGUF, in a subprocess (llama.cpp aborts the process on a bad file).

For each question: the prompt token ids llama-cpp-python builds from the
GGUF's ``tokenizer.chat_template`` (its ``Jinja2ChatFormatter``, as
``create_chat_completion`` does), and the greedy answer of
``create_chat_completion`` with its usage; plus the tokens of extra texts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def chat_probe(model: str, questions: list[str], *, max_tokens: int = 48, texts: list[str] = (),
               timeout: float = 600) -> dict:
    """{"prompt_ids": [...], "answers": [...], "usage_prompt_tokens": [...], "text_tokens": [...]}."""
    args = {"model": model, "questions": questions, "max_tokens": max_tokens, "texts": list(texts)}
    done = subprocess.run([sys.executable, __file__, json.dumps(args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, GGML_NO_BACKTRACE="1"))
    if done.returncode != 0:
        raise RuntimeError(f"llama.cpp failed on {model} (rc {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _main(args: dict) -> dict:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = Llama(model_path=args["model"], n_ctx=512, n_threads=1, verbose=False, seed=0)
    vocab = llm._model
    formatter = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"],
                                    eos_token=vocab.token_get_text(vocab.token_eos()),
                                    bos_token=vocab.token_get_text(vocab.token_bos()))
    out = {"prompt_ids": [], "answers": [], "usage_prompt_tokens": [],
           "text_tokens": [llm.tokenize(t.encode(), add_bos=False, special=True) for t in args["texts"]]}
    for question in args["questions"]:
        messages = [{"role": "user", "content": question}]
        rendered = formatter(messages=messages)
        out["prompt_ids"].append(llm.tokenize(rendered.prompt.encode(), add_bos=not rendered.added_special,
                                              special=True))
        reply = llm.create_chat_completion(messages=messages, temperature=0.0, max_tokens=args["max_tokens"])
        out["answers"].append(reply["choices"][0]["message"]["content"])
        out["usage_prompt_tokens"].append(reply["usage"]["prompt_tokens"])
    llm.close()
    return out


if __name__ == "__main__":
    print(json.dumps(_main(json.loads(sys.argv[1]))))
