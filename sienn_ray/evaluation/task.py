"""Ray glue: an evaluation runs as a one-CPU (or one-GPU) Ray task on the cluster, never in the API replica.

The task writes the report itself (the storage root is shared by every node).
When the task cannot report (its worker died, it ran out of time), the caller
records the failure instead, so ``evaluate_job`` always leaves a report behind
and never raises for a failed evaluation.
"""

from __future__ import annotations

import logging
import time

import ray

from ..schemas.common import utcnow
from ..schemas.evaluation import EvaluationSpec, EvaluationSummary
from .record import evaluate_and_record, record_failure

log = logging.getLogger(__name__)


# No retry: a worker that died evaluating (most often out of memory) would die again.
@ray.remote(num_cpus=1, max_retries=0)
def _evaluate(spec: dict) -> dict:
    return evaluate_and_record(EvaluationSpec.model_validate(spec)).model_dump(mode="json")


def evaluate_job(spec: EvaluationSpec, timeout_s: float | None = None) -> EvaluationSummary:
    """Evaluate a trained job on the cluster and wait for the outcome (the job runner calls this)."""
    started, clock = utcnow(), time.monotonic()
    options = {"name": f"evaluate-{spec.job_id}"} | ({"num_gpus": 1} if spec.use_gpu else {})
    ref = _evaluate.options(**options).remote(spec.model_dump(mode="json"))
    try:
        return EvaluationSummary.model_validate(ray.get(ref, timeout=timeout_s))
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        reason = f"the evaluation did not finish within {timeout_s:g} s"
    except ray.exceptions.RayError as err:
        # A RayTaskError's text holds the whole remote traceback; its first line says what happened.
        reason = f"the evaluation task failed: {type(err).__name__}: {_first_line(err)}"
    log.warning("evaluation of %s: %s", spec.job_id, reason)
    return record_failure(spec, started, reason, clock)


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""
