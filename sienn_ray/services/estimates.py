"""How long a job will take, from figures already at hand: the API never loads a model to guess.

The throughput comes from, in order: what past completed jobs of the same base
and worker count really achieved ("history"); a calibration measured earlier
on the cluster and cached ("calibration"); or a static figure from the model's
size ("static"), in which case the caller starts the calibration in the
background (a 1-CPU Ray task) for the next job.
"""

from __future__ import annotations

import statistics

from ..schemas.jobs import EstimateSource, JobRecord, TrainingConfig
from ..train.estimate import cached_calibration, job_tokens_per_second

# A LoRA step costs about 6 FLOPs per parameter per token (forward, backward through the frozen base).
# Sustained FLOP/s of one training worker: one CPU core with AVX2, or one datacenter GPU.
CPU_WORKER_FLOPS = 1e10
GPU_WORKER_FLOPS = 2e13


def static_tokens_per_second(num_parameters: int, config: TrainingConfig) -> float:
    """One worker's tokens/s guessed from the model's size alone."""
    flops = GPU_WORKER_FLOPS if config.use_gpu else CPU_WORKER_FLOPS * max(1.0, float(config.cpus_per_worker))
    return flops / (6.0 * max(num_parameters, 1))


def past_throughput(jobs: list[JobRecord], model_name: str, num_workers: int) -> list[float]:
    """Tokens/s measured by completed jobs of the same model and worker count."""
    return [j.metrics.tokens_per_second for j in jobs
            if j.model_name == model_name and j.config.num_workers == num_workers and j.metrics.tokens_per_second]


def job_throughput(model_path: str, num_parameters: int, config: TrainingConfig,
                   past_tps: list[float]) -> tuple[float, EstimateSource]:
    """(tokens/s for the whole job, where the figure comes from)."""
    measured = [t for t in past_tps if t and t > 0]
    if measured:
        return float(statistics.median(measured)), "history"
    calibrated = None if config.use_gpu else cached_calibration(model_path)
    if calibrated:
        return job_tokens_per_second(calibrated, config.num_workers), "calibration"
    per_worker = static_tokens_per_second(num_parameters, config)
    return job_tokens_per_second(per_worker, config.num_workers), "static"
