"""The evaluation report on disk: written atomically next to the job, read by the API.

Only paths and schemas here, so the API reads reports without importing the
evaluation's model code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .. import paths
from ..schemas.evaluation import EvaluationReport


def write_report(report: EvaluationReport) -> Path:
    """Write ``report`` to the job's ``evaluation.json``: a reader sees the old file or the new one, whole."""
    path = paths.job_evaluation(report.job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".evaluation-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(report.model_dump_json(indent=1))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_report(job_id: str) -> EvaluationReport | None:
    """The job's report, or None when it has none (yet)."""
    try:
        text = paths.job_evaluation(job_id).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return EvaluationReport.model_validate_json(text)
