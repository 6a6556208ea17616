"""A node lost mid-training: the job resumes from its last checkpoint, not from step 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import demo_config


@pytest.mark.slow
def test_node_kill_resumes_from_checkpoint(tmp_path, embedded_models):
    config = demo_config() | {"num_epochs": 8, "checkpoint_every_steps": 2, "max_failures": 3}
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # not the session's cluster
    env["SIENN_HOME"] = str(tmp_path / "home")
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("node_kill_script.py")), json.dumps(config)],
                          capture_output=True, text=True, timeout=900, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, (proc.returncode, proc.stdout[-2000:], proc.stderr[-4000:])
    result = json.loads(lines[-1][len("RESULT "):])
    assert result.get("status") == "completed", result
    assert result["final_step"] == result["total_steps"]
    assert result["resumed_from"] and min(result["resumed_from"]) > 0, result
    # Resumed at a checkpoint (every 2 steps), at or after the step seen before the kill (reports lag).
    assert all(step % 2 == 0 for step in result["resumed_from"]), result
    assert min(result["resumed_from"]) >= result["killed_at_step"] - 2, result
