"""Which rows a finished job is evaluated on: its validation split, or an eval dataset it was given.

The split is recomputed from the row count, the configured split and the seed
with training's own functions, so the evaluation sees exactly the rows training
held out and never one it trained on.
"""

from __future__ import annotations

from pathlib import Path

from .. import paths
from ..schemas.evaluation import DEFAULT_EVAL_SAMPLES, EvaluationSpec
from ..schemas.jobs import JobRecord
from ..train.inputs import count_rows, split_rows
from ..train.spec import effective_validation_split


def spec_for_job(job: JobRecord, dataset_path: str | Path | None = None, *,
                 eval_dataset_path: str | Path | None = None, eval_samples: int = DEFAULT_EVAL_SAMPLES,
                 max_new_tokens: int = 128) -> EvaluationSpec | None:
    """The evaluation of ``job``, or None when it has nothing held out.

    An eval dataset, when given, is used whole; otherwise the job's validation split of the dataset
    it trained on (``dataset_path``, default: the stored dataset of ``job.dataset_id``).
    """
    dataset_path = dataset_path or paths.dataset_data(job.dataset_id)
    cfg = job.config
    common = dict(job_id=job.job_id, base_model_path=job.model_path,
                  adapter_path=job.adapter_path or str(paths.job_adapter(job.job_id)), eval_samples=eval_samples,
                  max_new_tokens=max_new_tokens, max_length=cfg.max_length, batch_size=cfg.batch_size,
                  use_gpu=cfg.use_gpu)
    if eval_dataset_path is not None:
        return EvaluationSpec(**common, dataset_path=str(eval_dataset_path), rows=None, source="eval_dataset")
    num_rows = count_rows(dataset_path)
    _, held_out = split_rows(num_rows, effective_validation_split(cfg, num_rows), cfg.seed)
    if not held_out:
        return None
    return EvaluationSpec(**common, dataset_path=str(dataset_path), rows=held_out, source="validation_split")
