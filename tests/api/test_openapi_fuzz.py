"""schemathesis against the real Serve app: every check, every phase (stateful included), a fixed seed.

It is given a dataset and a completed job to find (as dictionaries bound to the id parameters), so
its requests reach past the 404s into the real logic; whatever jobs it starts are cancelled after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261201
MAX_EXAMPLES = 30


def _ids_config(base: str, dataset_id: str, job_id: str) -> str:
    file_id, fine_tuning_job_id = "file-" + dataset_id[3:], "ftjob-" + job_id[4:]  # the OpenAI face's ids
    lines = [base, "", f'[dictionaries.datasets]\nvalues = ["{dataset_id}"]',
             f'[dictionaries.jobs]\nvalues = ["{job_id}"]', f'[dictionaries.files]\nvalues = ["{file_id}"]',
             f'[dictionaries.ftjobs]\nvalues = ["{fine_tuning_job_id}"]', "", "[parameters]"]
    # Not body.job_id: test-model's body must keep exactly one of job_id/model_name, and a value put in
    # after generation would break that.
    for name, dictionary in (("path.dataset_id", "datasets"), ("body.dataset_id", "datasets"), ("path.job_id", "jobs"),
                             ("path.file_id", "files"), ("path.fine_tuning_job_id", "ftjobs")):
        lines.append(f'"{name}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_no_failure_in_over_a_thousand_cases(api_url, registry, reader, make_completed_job,
                                                                 tmp_path):
    rows = "".join(json.dumps({"instruction": f"fuzz {i}", "output": f"answer {i}"}) + "\n" for i in range(12))
    upload = httpx.post(f"{api_url}/api/upload-dataset", files={"file": ("fuzz.jsonl", rows.encode())}, timeout=60)
    assert upload.status_code == 200, upload.text
    job_id = make_completed_job("sienn-tiny-gpt2", seed=5)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_ids_config(CONFIG.read_text(), upload.json()["dataset_id"], job_id))
    report = tmp_path / "report.json"
    before = {j.job_id for j in reader.list_jobs()[0]}
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run",
               f"{api_url}/openapi.json", "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
               "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--request-timeout", "120",
               "--no-color", "--report", "json", "--report-json-path", str(report)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=tmp_path)  # its cache too
    finally:
        for job in reader.list_jobs()[0]:  # what the run started must not train on after it
            if job.job_id not in before and not job.status.is_terminal:
                registry.finish(job.job_id, "cancelled", "schemathesis run over").result()
    summary = json.loads(report.read_text())
    print(f"schemathesis: {summary['test_cases']['generated']} cases in {summary['running_time']:.0f} s")
    assert proc.returncode == 0 and not summary["failures"], proc.stdout[-8000:]
    assert summary["test_cases"]["generated"] >= 1000, summary["test_cases"]
    assert all(summary["phases"][phase]["status"] == "success" for phase in ("coverage", "fuzzing", "stateful")), \
        summary["phases"]
