"""Run an evaluation and record its outcome, whatever it is.

A failed evaluation is an outcome like any other: it is written as a report
with ``status: failed`` and the reason, never raised, so a trained job is never
failed by its evaluation.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from ..schemas.common import utcnow
from ..schemas.evaluation import EvaluationReport, EvaluationSpec, EvaluationSummary
from .reports import write_report
from .run import EvaluationError, run_evaluation

log = logging.getLogger(__name__)
MAX_REASON_CHARS = 2000


def record_failure(spec: EvaluationSpec, started: datetime, reason: str,
                   clock: float | None = None) -> EvaluationSummary:
    """Write a failed report with ``reason`` and return its summary."""
    finished = utcnow()
    seconds = time.monotonic() - clock if clock is not None else (finished - started).total_seconds()
    report = EvaluationReport(job_id=spec.job_id, status="failed", error=reason[:MAX_REASON_CHARS],
                              source=spec.source, started_at=started, finished_at=finished,
                              duration_seconds=round(seconds, 3), eval_samples=spec.eval_samples,
                              max_new_tokens=spec.max_new_tokens)
    return EvaluationSummary.of(report, str(write_report(report)))


def evaluate_and_record(spec: EvaluationSpec) -> EvaluationSummary:
    """Run the evaluation, write its report (completed or failed) and return the summary; never raises
    for a failed evaluation."""
    started, clock = utcnow(), time.monotonic()
    try:
        report = run_evaluation(spec)
    except EvaluationError as err:
        log.warning("evaluation of %s cannot run: %s", spec.job_id, err)
        return record_failure(spec, started, str(err), clock)
    except Exception as err:  # noqa: BLE001 - any failure is the evaluation's outcome, recorded for the user
        log.exception("evaluation of %s failed", spec.job_id)
        return record_failure(spec, started, f"{type(err).__name__}: {err}", clock)
    return EvaluationSummary.of(report, str(write_report(report)))
