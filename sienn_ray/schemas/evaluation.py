"""Evaluation of a fine-tune against its base: what a run is given and what it reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from .common import Strict

DEFAULT_EVAL_SAMPLES = 20
MAX_EVAL_SAMPLES = 1000


class EvaluationSpec(Strict):
    """Everything one evaluation needs; crosses to the Ray task as a plain dict.

    The held-out rows are ``rows`` of ``dataset_path`` (the job's validation split, chosen
    as training chose it), or every row of it when ``rows`` is None (an eval dataset).
    The prompt template is the job's ``template.json`` in ``adapter_path``.
    """

    job_id: str
    base_model_path: str
    adapter_path: str = Field(description="PEFT adapter folder with tokenizer and template.json")
    dataset_path: str = Field(description="Normalized JSONL (instruction or chat records)")
    rows: list[int] | None = Field(None, description="Row numbers of the held-out rows; None: every row")
    source: Literal["validation_split", "eval_dataset"] = "validation_split"
    eval_samples: int = Field(DEFAULT_EVAL_SAMPLES, ge=0, le=MAX_EVAL_SAMPLES,
                              description="Rows answered greedily by both models and scored")
    max_new_tokens: int = Field(128, ge=1, le=4096, description="Token budget of each generated answer")
    max_length: int = Field(512, ge=8, description="The job's max_length: examples are truncated as in training")
    batch_size: int = Field(8, ge=1, le=512, description="Examples per forward pass of the loss (the job's)")
    generation_batch_size: int = Field(
        32, ge=1, le=512, description="Rows answered together; a batch decodes until its longest answer ends, "
        "so one batch for all samples is fastest on a CPU (weights are read once per step)")
    use_gpu: bool = Field(False, description="Run on one GPU (as the job trained), else on one CPU")


class RowScores(BaseModel):
    """One answer scored against its reference (each in [0, 1])."""

    exact_match: float
    token_f1: float
    rouge_l: float


class ModelFigures(BaseModel):
    """One model (base or tuned) on the held-out rows."""

    eval_loss: float | None = Field(None, description="Mean cross-entropy per response token")
    perplexity: float | None = Field(None, description="exp(eval_loss); null if it overflows")
    exact_match: float | None = Field(None, description="Mean over the generated rows")
    token_f1: float | None = None
    rouge_l: float | None = None
    loss_tokens: int = Field(0, description="Response tokens the loss is averaged over")
    generated_rows: int = 0
    generated_tokens: int = Field(0, description="Tokens generated over all rows (EOS excluded)")


class FigureDeltas(BaseModel):
    """Tuned minus base; null where either side has no figure."""

    eval_loss: float | None = None
    perplexity: float | None = None
    exact_match: float | None = None
    token_f1: float | None = None
    rouge_l: float | None = None


class EvaluationRow(BaseModel):
    """One held-out row answered by both models."""

    row: int = Field(description="Row number in the dataset file")
    prompt: str = Field(description="The instruction, or the last user message of a conversation")
    input: str | None = Field(None, description="The instruction's input field, when it has one")
    reference: str
    base_output: str
    tuned_output: str
    base_scores: RowScores
    tuned_scores: RowScores


class EvaluationReport(BaseModel):
    """GET /api/jobs/{job_id}/evaluation: the figures, the rows, and when it ran."""

    job_id: str
    status: Literal["completed", "failed"]
    error: str | None = Field(None, description="Why the evaluation failed (the job itself is not failed)")
    source: Literal["validation_split", "eval_dataset"] = "validation_split"
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    rows_used: list[int] = Field(default_factory=list, description="Held-out row numbers the loss covers")
    rows_dropped: list[int] = Field(default_factory=list,
                                    description="Held-out rows whose response was truncated away at max_length")
    eval_samples: int = DEFAULT_EVAL_SAMPLES
    max_new_tokens: int = 128
    base: ModelFigures | None = None
    tuned: ModelFigures | None = None
    deltas: FigureDeltas | None = None
    rows: list[EvaluationRow] = Field(default_factory=list)


class EvaluationSummary(BaseModel):
    """What ``evaluate_job`` returns to the job runner: the outcome without the rows."""

    job_id: str
    status: Literal["completed", "failed"]
    error: str | None = None
    report_path: str
    finished_at: datetime
    duration_seconds: float
    rows_used: int = 0
    base: ModelFigures | None = None
    tuned: ModelFigures | None = None
    deltas: FigureDeltas | None = None

    @classmethod
    def of(cls, report: EvaluationReport, report_path: str) -> "EvaluationSummary":
        """The summary of ``report`` (stored at ``report_path``)."""
        return cls(job_id=report.job_id, status=report.status, error=report.error, report_path=report_path,
                   finished_at=report.finished_at, duration_seconds=report.duration_seconds,
                   rows_used=len(report.rows_used), base=report.base, tuned=report.tuned, deltas=report.deltas)


class EvaluationFigures(BaseModel):
    """A job's evaluation in a comparison: the figures without the rows."""

    status: Literal["completed", "failed"]
    error: str | None = None
    finished_at: datetime
    rows_used: int
    base: ModelFigures | None = None
    tuned: ModelFigures | None = None
    deltas: FigureDeltas | None = None
