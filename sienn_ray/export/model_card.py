"""The model card (README.md) shipped with every export."""

from __future__ import annotations

import json

from ..data.templates import ALPACA_NO_INPUT, ALPACA_WITH_INPUT, PromptTemplate


def model_card(*, title: str, job: dict, dataset: dict | None, template: PromptTemplate, fmt: str,
               quantization: str | None, files: list[str], gguf_name: str | None = None) -> str:
    """Markdown: base model, dataset, training config, final metrics, prompt template, usage."""
    sections = [
        f"# {title}\n\nA LoRA fine-tune of `{job['model_name']}` made with sienn-ray (job `{job['job_id']}`), "
        f"exported as **{fmt}**" + (f" ({quantization})." if quantization else "."),
        _base_model(job),
        _dataset(job, dataset),
        "## Training configuration\n\n```json\n" + json.dumps(job.get("config", {}), indent=2, sort_keys=True)
        + "\n```",
        _metrics(job),
        _template(template),
        _usage(fmt, title, gguf_name),
        "## Files\n\n" + "\n".join(f"- `{name}`" for name in files),
    ]
    return "\n\n".join(sections) + "\n"


def _base_model(job: dict) -> str:
    return f"## Base model\n\n- Name: `{job['model_name']}`"


def _dataset(job: dict, dataset: dict | None) -> str:
    lines = [f"- Dataset id: `{job['dataset_id']}`"]
    if dataset:
        lines += [f"- File: `{dataset.get('name') or dataset.get('filename')}` ({dataset.get('format')})",
                  f"- Rows: {dataset.get('total_samples')}", f"- Kind: {dataset.get('kind', 'instruction')}"]
    return "## Dataset\n\n" + "\n".join(lines)


def _metrics(job: dict) -> str:
    metrics = {k: v for k, v in (job.get("metrics") or {}).items() if v is not None}
    metrics |= {"steps": job.get("step"), "epochs": job.get("current_epoch")}
    rows = "\n".join(f"| {key} | {_fmt(value)} |" for key, value in metrics.items() if value is not None)
    return "## Final metrics\n\n| metric | value |\n|---|---|\n" + rows


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _template(template: PromptTemplate) -> str:
    head = f"## Prompt template\n\nKind: `{template.kind}`; end of text: `{template.eos_token}`"
    if template.stop_strings:
        head += "; also stops at " + ", ".join(f"`{s}`" for s in template.stop_strings)
    if template.kind == "alpaca":
        body = ("Prompts are rendered exactly as in training; the model's answer follows, ended by the EOS token.\n\n"
                f"Without input:\n\n```text\n{ALPACA_NO_INPUT}```\n\nWith input:\n\n```text\n{ALPACA_WITH_INPUT}```")
    else:
        body = f"Chat template (Jinja):\n\n```jinja\n{template.chat_template}\n```"
    return head + ".\n\n" + body


def _usage(fmt: str, title: str, gguf_name: str | None) -> str:
    if fmt == "pytorch":
        code = ("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                "model = AutoModelForCausalLM.from_pretrained(\".\")\n"
                "tokenizer = AutoTokenizer.from_pretrained(\".\")\n```\n\n"
                "The unmerged PEFT adapter is in `adapter/` "
                "(`PeftModel.from_pretrained(base_model, \"adapter\")`).")
    elif fmt == "gguf":
        code = f"```bash\nllama-cli -m {gguf_name} -p \"...\"\n```"
    else:
        code = f"```bash\nollama create {title.lower()} -f Modelfile\nollama run {title.lower()}\n```"
    return "## Usage\n\n" + code
