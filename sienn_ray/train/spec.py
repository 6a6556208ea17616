"""What a training run is given: one pydantic model, sent to every worker as a plain dict."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..schemas.common import Strict
from ..schemas.jobs import TrainingConfig

# Below this many rows a held-out split would leave too little to train on.
MIN_ROWS_FOR_DEFAULT_EVAL = 50
DEFAULT_VALIDATION_SPLIT = 0.1


class TrainJobSpec(Strict):
    """Everything a worker needs; ``train_loop_config`` is ``spec.model_dump(mode="json")``.

    Paths are absolute and must be visible from every node (the storage root).
    """

    job_id: str
    model_name: str
    model_path: str
    dataset_path: str = Field(description="Normalized JSONL: instruction records or chat records")
    config: TrainingConfig = Field(default_factory=TrainingConfig)
    storage_path: str = Field(description="Ray Train storage_path: the run's checkpoints live below it")
    adapter_dir: str = Field(description="Where the final PEFT adapter + tokenizer + template.json go")
    registry_name: str | None = Field(None, description="Named JobRegistry actor; None: report nowhere")
    namespace: str | None = None
    lease_token: int | None = Field(None, description="The runner's lease; rank 0's reports carry it")
    data_kind: Literal["instruction", "chat"] = "instruction"
    eval_dataset_path: str | None = Field(
        None, description="Normalized JSONL evaluated whole instead of a held-out split of dataset_path"
    )
    resume_from: str | None = Field(
        None, description="A checkpoint directory to start from when the run has none of its own yet"
    )


def effective_validation_split(config: TrainingConfig, num_rows: int) -> float:
    """The configured split, else 10% for datasets of at least 50 rows, else none."""
    if config.validation_split is not None:
        return config.validation_split
    return DEFAULT_VALIDATION_SPLIT if num_rows >= MIN_ROWS_FOR_DEFAULT_EVAL else 0.0
