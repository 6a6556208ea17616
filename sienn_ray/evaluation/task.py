"""Ray glue: an evaluation runs as a one-CPU (or one-GPU) Ray task on the cluster, never in the API replica.

The task writes the report itself (the storage root is shared by every node).
When the task cannot report (its worker died, it ran out of time), the caller
records the failure instead, so ``evaluate_job`` always leaves a report behind
and never raises for a failed evaluation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import ray

from ..schemas.common import utcnow
from ..schemas.evaluation import EvaluationSpec, EvaluationSummary
from .record import evaluate_and_record, record_failure

log = logging.getLogger(__name__)
# How often a waiting caller checks whether it was asked to stop.
POLL_S = 1.0


# No retry: a worker that died evaluating (most often out of memory) would die again.
@ray.remote(num_cpus=1, max_retries=0)
def _evaluate(spec: dict) -> dict:
    return evaluate_and_record(EvaluationSpec.model_validate(spec)).model_dump(mode="json")


def evaluate_job(spec: EvaluationSpec, timeout_s: float | None = None,
                 should_stop: Callable[[], str | None] = lambda: None) -> EvaluationSummary:
    """Evaluate a trained job on the cluster and wait for the outcome (the job runner calls this).

    ``should_stop`` is asked every second; a reason it returns (e.g. the job was cancelled) cancels the
    task, and the evaluation is recorded as failed with that reason.
    """
    started, clock = utcnow(), time.monotonic()
    options = {"name": f"evaluate-{spec.job_id}"} | ({"num_gpus": 1} if spec.use_gpu else {})
    ref = _evaluate.options(**options).remote(spec.model_dump(mode="json"))
    deadline = None if timeout_s is None else clock + timeout_s
    while True:
        # Never wait past the deadline: a task that finishes after it is out of time all the same.
        wait_s = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
        ready, _ = ray.wait([ref], timeout=wait_s)
        if ready:
            try:
                return EvaluationSummary.model_validate(ray.get(ref))
            except ray.exceptions.RayError as err:
                # A RayTaskError's text holds the whole remote traceback; its first line says what happened.
                reason = f"the evaluation task failed: {type(err).__name__}: {_first_line(err)}"
            break
        stop = should_stop()
        if stop or (deadline is not None and time.monotonic() > deadline):
            ray.cancel(ref, force=True)
            reason = stop or f"the evaluation did not finish within {timeout_s:g} s"
            break
    log.warning("evaluation of %s: %s", spec.job_id, reason)
    return record_failure(spec, started, reason, clock)


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""
