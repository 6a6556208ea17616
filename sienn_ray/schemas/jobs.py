"""Training configuration and job records: one schema for the API, the CLI and the train loop."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from .common import Strict
from .evaluation import DEFAULT_EVAL_SAMPLES, MAX_EVAL_SAMPLES, EvaluationSummary
from .openai_jobs import OpenAIJobSpec


class DeepSpeedConfig(Strict):
    """ZeRO settings passed through to DeepSpeed."""

    stage: int = Field(2, ge=0, le=3, description="ZeRO stage 0-3")
    offload_optimizer: bool = Field(False, description="Keep optimizer state on the CPU")


class TrainingConfig(Strict):
    """Hyper-parameters of one LoRA job. Spec defaults where the spec names them."""

    num_epochs: int = Field(3, ge=1, le=1000, description="Passes over the training split")
    batch_size: int = Field(4, ge=1, le=4096, description="Sequences per optimizer step per worker")
    learning_rate: float = Field(2e-5, gt=0, le=1.0, description="Peak learning rate (AdamW)")
    max_length: int = Field(512, ge=8, description="Tokens per example; longer ones are truncated and reported")
    lora_r: int = Field(32, ge=1, le=1024, description="LoRA rank")
    lora_alpha: float = Field(64, gt=0, description="LoRA alpha (scale = alpha / r)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA branch")
    target_modules: list[str] | None = Field(
        None, description="Module names to adapt; omitted -> chosen per architecture"
    )
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    weight_decay: float = Field(0.0, ge=0, le=1)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler: Literal["constant", "linear", "cosine"] = "linear"
    max_grad_norm: float = Field(1.0, gt=0)
    validation_split: float | None = Field(
        None, ge=0, lt=1, description="Fraction held out for eval_loss; default 0.1 when >= 50 rows, else 0"
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many evaluations without eval_loss improving"
    )
    train_on_inputs: bool = Field(False, description="Also compute the loss on prompt tokens")
    eval_samples: int = Field(
        DEFAULT_EVAL_SAMPLES, ge=0, le=MAX_EVAL_SAMPLES,
        description="Held-out rows answered greedily by the base and the tuned model in the evaluation that "
        "ends every job with a validation split or an eval dataset (0: losses only)")
    prompt_template: Literal["auto", "chat", "alpaca"] = Field(
        "auto", description="How instruction records become text: auto = the base's chat template when it has "
        "one, else Alpaca; chat = a chat template (ChatML when the base has none); alpaca. Chat datasets always "
        "use the chat template. The job records its choice (template.json with the adapter)")
    system_prompt: str | None = Field(
        None, min_length=1, max_length=4000,
        description="System message put first in every conversation without one (chat templates only)")
    packing: bool = Field(True, description="Padding-free packing of several examples per row")
    seed: int = 42
    # Beyond the spec: scale-out.
    num_workers: int = Field(1, ge=1, le=512, description="Ray Train workers")
    use_gpu: bool = False
    cpus_per_worker: float = Field(1, gt=0)
    deepspeed: DeepSpeedConfig | None = None
    max_failures: int = Field(2, ge=0, le=100, description="Worker-group restarts from the last checkpoint")
    checkpoint_every_steps: int | None = Field(None, ge=1, description="Default: once per epoch")
    checkpoints_to_keep: int = Field(2, ge=1)
    bf16: bool = Field(False, description="bf16 autocast (GPU)")

    @model_validator(mode="after")
    def _deepspeed_needs_distributed_safe_settings(self):
        if self.target_modules is not None and not self.target_modules:
            raise ValueError("target_modules must not be empty (omit it to use the architecture's default)")
        if self.system_prompt is not None and self.prompt_template == "alpaca":
            raise ValueError("system_prompt needs a chat template; the Alpaca template has no system message")
        return self


class JobStatus(str, Enum):
    PENDING = "pending"  # queued, or launching: no worker has reported yet
    RUNNING = "running"
    PAUSED = "paused"  # stopped at a checkpoint, holding no resources; resume re-queues it
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobPhase(str, Enum):
    """Where an unfinished job is, finer than its status."""

    QUEUED = "queued"  # in the registry's queue; holds no actor and no resources
    LAUNCHING = "launching"  # a runner holds the job's lease; its workers have not reported yet
    TRAINING = "training"
    STOPPING = "stopping"  # a cancel or a pause is under way (workers agree on a step, save, stop)
    PAUSED = "paused"
    EVALUATING = "evaluating"  # trained; base and tuned model are being compared on the held-out rows
    DONE = "done"  # completed, failed or cancelled


StopKind = Literal["cancel", "pause"]
EstimateSource = Literal["history", "calibration", "static"]
MAX_PRIORITY = 100


class Lease(BaseModel):
    """The right to run a job, held by one runner at a time and renewed by its heartbeats."""

    token: int = Field(description="Fencing token: grows with every grant; an older one is refused")
    holder: str = Field(description="The runner actor's name (or the driver that adopted the job)")
    granted_at: datetime
    expires_at: datetime
    heartbeat_at: datetime | None = None


class StartFinetuningRequest(Strict):
    dataset_id: str = Field(..., max_length=80)
    model_name: str | None = Field(None, max_length=1024, description="Base model; omitted -> the embedded default")
    config: TrainingConfig = Field(default_factory=TrainingConfig)
    priority: int = Field(0, ge=0, le=MAX_PRIORITY, description="Higher runs first; first come, first served "
                                                               "within a priority")
    eval_dataset_id: str | None = Field(
        None, max_length=80, description="A dataset the tuned model is evaluated on whole: at every checkpoint "
        "(eval loss) and, against its base, after training; every row of the training dataset then trains. "
        "Default: a held-out split of the training dataset, when it has one")


class StartFinetuningResponse(BaseModel):
    job_id: str
    status: JobStatus
    phase: JobPhase
    queue_position: int | None
    message: str
    estimated_time: str
    estimated_seconds: float
    estimate_source: EstimateSource
    created_at: datetime


class TrainingMetrics(BaseModel):
    train_loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    tokens_per_second: float | None = None


class JobRecord(BaseModel):
    """Everything known about a job; the registry persists it and the status endpoint shows it."""

    job_id: str
    tenant: str = "default"
    status: JobStatus = JobStatus.PENDING
    phase: JobPhase = JobPhase.QUEUED
    priority: int = 0
    running_quota: int | None = Field(None, description="Most jobs of its tenant holding resources at once (the "
                                                        "submitting key's quota); None: no limit")
    queue_position: int | None = Field(None, description="1 = launched next; computed when read, never stored")
    model_name: str
    model_path: str
    dataset_id: str
    eval_dataset_id: str | None = None
    config: TrainingConfig
    source: Literal["api", "cli", "openai"] = "api"
    progress: float = 0.0
    current_epoch: int = 0
    total_epochs: int
    step: int = 0
    total_steps: int | None = None
    metrics: TrainingMetrics = Field(default_factory=TrainingMetrics)
    message: str = "Fine-tuning job queued successfully"
    error_code: str | None = None
    created_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime
    completed_at: datetime | None = None
    estimated_completion: datetime | None = None
    estimated_seconds: float | None = None
    estimate_source: EstimateSource | None = None
    adapter_path: str | None = None
    last_checkpoint: str | None = None
    attempts: int = Field(0, description="Runner launches since the job was last queued (submit or resume)")
    lease: Lease | None = None
    last_token: int = Field(0, description="The newest fencing token granted for this job")
    stop_request: StopKind | None = None
    stop_deadline: datetime | None = None
    truncated_examples: int = 0
    evaluation: EvaluationSummary | None = Field(
        None, description="The evaluation against the base (figures; the rows are at /api/jobs/{id}/evaluation)")
    openai: OpenAIJobSpec | None = Field(None, description="Jobs created through /v1/fine_tuning/jobs: what was "
                                         "asked there and how \"auto\" was resolved")
    trained_tokens: int | None = Field(None, description="Tokens the workers trained on so far (every rank)")


class RunOutcome(BaseModel):
    """What a runner reports when its trainer's ``fit()`` returned or raised."""

    result: Literal["finished", "stopped", "failed"]
    message: str = ""
    error_code: str | None = None
    adapter_path: str | None = None
    step: int | None = Field(None, description="The last optimizer step the workers took")
    epoch: int | None = Field(None, description="1-based epoch of that step")
    metrics: dict[str, float] = {}
    evaluation: EvaluationSummary | None = None


class JobSummary(BaseModel):
    job_id: str
    status: JobStatus
    phase: JobPhase
    priority: int
    model_name: str
    dataset_id: str
    progress: float
    created_at: datetime
    updated_at: datetime
    message: str


class JobList(BaseModel):
    jobs: list[JobSummary]
    total: int
    limit: int
    offset: int


class JobEvent(BaseModel):
    seq: int
    job_id: str
    type: str
    timestamp: datetime
    data: dict = {}


class JobEvents(BaseModel):
    job_id: str
    events: list[JobEvent]
    has_more: bool = Field(description="More events after the last one; ask again with after=<its seq>")


class LossPoint(BaseModel):
    step: int
    epoch: float
    train_loss: float | None = None
    eval_loss: float | None = None
    eval_token_accuracy: float | None = Field(None, description="Share of eval target tokens predicted right")
    learning_rate: float | None = None


class LossHistory(BaseModel):
    job_id: str
    points: list[LossPoint]
