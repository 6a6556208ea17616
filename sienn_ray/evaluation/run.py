"""One evaluation, start to finish, as plain Python (``task.py`` runs it on the cluster).

The base model is loaded once with the job's adapter on top; both passes (loss,
then greedy answers) run twice, adapter on (tuned) and inside
``disable_adapter()`` (base), so both models see the same tokens, batches and
prompts.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..data.templates import TEMPLATE_FILE, PromptTemplate
from ..data.tokenize import tokenize_example
from ..models.lora_adapter import adapter_present
from ..models.model_config import context_length, read_model_config
from ..schemas.common import utcnow
from ..schemas.evaluation import EvaluationReport, EvaluationRow, EvaluationSpec
from ..train.inputs import count_rows, iter_rows
from .metrics import deltas, model_figures, score_answer
from .passes import Answer, generate_answers, held_out_loss
from .samples import generation_case

log = logging.getLogger(__name__)


class EvaluationError(ValueError):
    """The evaluation cannot run on what it was given (the message says why)."""


def input_problems(spec: EvaluationSpec) -> list[str]:
    """Every reason the evaluation cannot start (empty when it can)."""
    problems = []
    if not (Path(spec.base_model_path) / "config.json").is_file():
        problems.append(f"the base model is missing (no config.json in {spec.base_model_path})")
    if not adapter_present(spec.adapter_path):
        problems.append(f"the job's adapter is incomplete (adapter_config.json or its weights not found in "
                        f"{spec.adapter_path})")
    if not (Path(spec.adapter_path) / TEMPLATE_FILE).is_file():
        problems.append(f"the job's adapter is incomplete ({TEMPLATE_FILE} not found in {spec.adapter_path})")
    if not Path(spec.dataset_path).is_file():
        problems.append(f"the held-out data is missing ({spec.dataset_path} not found)")
    return problems


def held_out_records(spec: EvaluationSpec) -> list[tuple[int, dict]]:
    """(row number, record) of the held-out rows, in row order."""
    wanted = spec.rows if spec.rows is not None else range(count_rows(spec.dataset_path))
    records = list(iter_rows(spec.dataset_path, set(wanted)))
    missing = sorted(set(wanted) - {row for row, _ in records})
    if missing:
        raise EvaluationError(f"{spec.dataset_path} has no rows {missing[:10]}")
    if not records:
        raise EvaluationError("there are no held-out rows to evaluate on")
    return records


def load_tuned_model(spec: EvaluationSpec):
    """The base with the job's adapter on top (toggled off with ``disable_adapter()``): float32 on the
    CPU, bfloat16 on a GPU (as inference serves it)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    on_gpu = spec.use_gpu and torch.cuda.is_available()
    base = AutoModelForCausalLM.from_pretrained(
        spec.base_model_path, dtype=torch.bfloat16 if on_gpu else torch.float32, attn_implementation="sdpa",
        trust_remote_code=False)
    model = PeftModel.from_pretrained(base, spec.adapter_path, is_trainable=False).eval()
    return model.to("cuda") if on_gpu else model


def load_tokenizer(spec: EvaluationSpec):
    """The tokenizer the job saved with its adapter (the base's, for adapters saved without one)."""
    from transformers import AutoTokenizer

    own = (Path(spec.adapter_path) / "tokenizer_config.json").is_file()
    return AutoTokenizer.from_pretrained(spec.adapter_path if own else spec.base_model_path, trust_remote_code=False)


def run_evaluation(spec: EvaluationSpec) -> EvaluationReport:
    """Loss, perplexity and scored greedy answers of base and tuned model on the held-out rows."""
    started, clock = utcnow(), time.monotonic()
    problems = input_problems(spec)
    if problems:
        raise EvaluationError("; ".join(problems))
    template = PromptTemplate.load(Path(spec.adapter_path))
    tokenizer = load_tokenizer(spec)
    records = held_out_records(spec)
    examples, used, dropped = _loss_examples(tokenizer, template, records, spec.max_length)
    cases = [generation_case(tokenizer, template, row, record) for row, record in records[:spec.eval_samples]]
    eos_id = tokenizer.convert_tokens_to_ids(template.eos_token)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    context = context_length(read_model_config(spec.base_model_path))

    def both_passes(model) -> tuple[tuple[float, int], list[Answer]]:
        loss = held_out_loss(model, examples, pad_id, spec.batch_size)
        answers = generate_answers(model, tokenizer, template, cases, spec.max_new_tokens,
                                   spec.generation_batch_size, context)
        log.info("evaluation of %s: pass done after %.1f s", spec.job_id, time.monotonic() - clock)
        return loss, answers

    model = load_tuned_model(spec)
    tuned_loss, tuned_answers = both_passes(model)
    with model.disable_adapter():
        base_loss, base_answers = both_passes(model)
    rows = [EvaluationRow(row=case.row, prompt=case.prompt, input=case.input, reference=case.reference,
                          base_output=b.text, tuned_output=t.text, base_scores=score_answer(b.text, case.reference),
                          tuned_scores=score_answer(t.text, case.reference))
            for case, b, t in zip(cases, base_answers, tuned_answers)]
    base = model_figures(*base_loss, [r.base_scores for r in rows], sum(a.tokens for a in base_answers))
    tuned = model_figures(*tuned_loss, [r.tuned_scores for r in rows], sum(a.tokens for a in tuned_answers))
    return EvaluationReport(
        job_id=spec.job_id, status="completed", source=spec.source, started_at=started, finished_at=utcnow(),
        duration_seconds=round(time.monotonic() - clock, 3), rows_used=used, rows_dropped=dropped,
        eval_samples=spec.eval_samples, max_new_tokens=spec.max_new_tokens, base=base, tuned=tuned,
        deltas=deltas(base, tuned), rows=rows)


def _loss_examples(tokenizer, template: PromptTemplate, records: list[tuple[int, dict]], max_length: int):
    """(examples, rows they come from, rows whose response max_length cut away), tokenized as training does."""
    examples, used, dropped = [], [], []
    for row, record in records:
        example = tokenize_example(tokenizer, template, record, max_length)
        if example is None:
            dropped.append(row)
        else:
            examples.append(example)
            used.append(row)
    return examples, used, dropped
