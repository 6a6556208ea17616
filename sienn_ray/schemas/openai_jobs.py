"""OpenAI's fine-tuning job shapes (/v1/fine_tuning/jobs): the create request, the job, events, checkpoints.

The request is strict (an unknown parameter is a 400 naming it), like our own
requests; the answers follow the OpenAI SDK's models field for field, so code
written for the hosted service reads them unchanged. ``OpenAIJobSpec`` is what
a job created through this face records: what was asked and how ``"auto"`` was
resolved.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, WrapValidator, model_validator
from pydantic_core import PydanticCustomError

from .common import Strict
from .openai import OpenAIList

Auto = Literal["auto"]
# OpenAI's limits where it states them (batch size, metadata); ours where the trainer's are wider.
Epochs = Annotated[int, Field(ge=1, le=1000)]
BatchSize = Annotated[int, Field(ge=1, le=256)]
Multiplier = Annotated[float, Field(gt=0, le=100)]
MAX_METADATA_KEYS = 16
MetadataKey = Annotated[str, Field(min_length=1, max_length=64)]
MetadataValue = Annotated[str, Field(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_KEYS)]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
# ':' separates the parts of a fine-tuned model's name, so a suffix cannot hold one.
Suffix = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
FileId = Annotated[str, Field(min_length=1, max_length=100)]

OpenAIJobStatus = Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled", "paused"]


def _auto_or(what: str) -> WrapValidator:
    """One clear message for a value that is neither "auto" nor in range (not one per union member)."""

    def check(value, handler):
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("auto_or_value", f'must be "auto" or {what}') from None

    return WrapValidator(check)


class Hyperparameters(Strict):
    """Each a value or ``"auto"`` (resolved from the training file's size and the base model)."""

    n_epochs: Annotated[Auto | Epochs, _auto_or("an integer from 1 to 1000")] = "auto"
    batch_size: Annotated[Auto | BatchSize, _auto_or("an integer from 1 to 256")] = "auto"
    learning_rate_multiplier: Annotated[Auto | Multiplier, _auto_or("a number above 0, at most 100")] = Field(
        "auto", description="Scales the base model's reference LoRA learning rate")


class SupervisedMethod(Strict):
    hyperparameters: Hyperparameters | None = None


class Method(Strict):
    type: Literal["supervised"] = Field(description="Only supervised fine-tuning (no DPO, no reinforcement)")
    supervised: SupervisedMethod | None = None


class CreateFineTuningJobRequest(Strict):
    """POST /v1/fine_tuning/jobs."""

    model: str = Field(min_length=1, max_length=1024, description="A base model (GET /api/models)")
    training_file: FileId
    validation_file: FileId | None = None
    hyperparameters: Hyperparameters | None = Field(None, description="Deprecated by OpenAI: prefer "
                                                    "method.supervised.hyperparameters")
    method: Method | None = None
    suffix: Suffix | None = None
    seed: Seed | None = Field(None, description="Omitted: one is drawn and recorded")
    metadata: Metadata | None = None
    integrations: list[Any] | None = Field(None, max_length=0, description="None are supported")

    @model_validator(mode="after")
    def _one_place_for_hyperparameters(self):
        if self.hyperparameters is not None and self.method is not None and self.method.supervised is not None \
                and self.method.supervised.hyperparameters is not None:
            raise ValueError("give hyperparameters either at the top level or under method.supervised, not both")
        return self

    @property
    def asked_hyperparameters(self) -> Hyperparameters:
        """The hyperparameters asked for, wherever they were given (all "auto" when none were)."""
        if self.method is not None and self.method.supervised is not None and self.method.supervised.hyperparameters:
            return self.method.supervised.hyperparameters
        return self.hyperparameters or Hyperparameters()


class ResolvedHyperparameters(BaseModel):
    """The numbers a job trains with, ``"auto"`` resolved."""

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    reference_learning_rate: float = Field(description="The base model's LoRA rate the multiplier scales")
    learning_rate: float


class OpenAIJobSpec(BaseModel):
    """What a job created through the OpenAI face was asked, and how "auto" was resolved (kept on the job)."""

    suffix: str | None = None
    metadata: dict[str, str] | None = None
    asked: Hyperparameters
    resolved: ResolvedHyperparameters
    validation_file: str | None = None


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class JobHyperparameters(BaseModel):
    n_epochs: Auto | int
    batch_size: Auto | int
    learning_rate_multiplier: Auto | float


class SupervisedMethodOut(BaseModel):
    hyperparameters: JobHyperparameters


class MethodOut(BaseModel):
    type: Literal["supervised"] = "supervised"
    supervised: SupervisedMethodOut


class FineTuningJob(BaseModel):
    """OpenAI's ``fine_tuning.job``; underneath, one of our jobs (``/api/jobs/job_<same hex>``)."""

    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    hyperparameters: JobHyperparameters
    method: MethodOut
    model: str
    organization_id: str
    result_files: list[str]
    seed: int
    status: OpenAIJobStatus
    trained_tokens: int | None = None
    training_file: str
    validation_file: str | None = None
    estimated_finish: int | None = None
    integrations: list[Any] = []
    metadata: dict[str, str] | None = None
    user_provided_suffix: str | None = None


class FineTuningJobList(OpenAIList[FineTuningJob]):
    has_more: bool


class FineTuningJobEvent(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    type: Literal["message", "metrics"] = "message"
    data: dict[str, Any] = Field(default_factory=dict, description="Our event's data, with its type as `event`")


class FineTuningJobEventList(OpenAIList[FineTuningJobEvent]):
    has_more: bool


class CheckpointMetrics(BaseModel):
    step: float | None = None
    train_loss: float | None = None
    train_mean_token_accuracy: float | None = None
    valid_loss: float | None = None
    valid_mean_token_accuracy: float | None = None
    full_valid_loss: float | None = None
    full_valid_mean_token_accuracy: float | None = None


class FineTuningJobCheckpoint(BaseModel):
    """A checkpoint of a job, servable as a model by its ``fine_tuned_model_checkpoint`` name."""

    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: CheckpointMetrics
    step_number: int


class FineTuningJobCheckpointList(OpenAIList[FineTuningJobCheckpoint]):
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None
