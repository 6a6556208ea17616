"""The export core is plain Python: it imports (and so runs) with Ray unimportable."""

from __future__ import annotations

import json
import subprocess
import sys

PURE = ("run", "merge", "gguf_writer", "gguf_arch", "tokenizer_meta", "prompt_formats", "modelfile", "model_card",
        "zipstream")


def test_export_core_does_not_need_ray():
    code = ("import sys; sys.modules['ray'] = None\n"
            + "".join(f"import sienn_ray.export.{name}\n" for name in PURE))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_gguf_export_runs_without_torch_transformers_or_peft(family_models, family_adapters, tmp_path):
    """The streamed GGUF path is numpy + gguf + tokenizers: the export worker stays small."""
    job = {"job_id": "job_00000000000000aa", "model_name": "m", "dataset_id": "ds_00000000000000bb"}
    task = {"export_id": "exp_00000000000000cc", "job_id": job["job_id"], "format": "ollama", "quantization": "q4_0",
            "base_dir": str(family_models["llama"]), "adapter_dir": str(family_adapters["llama"]),
            "out_dir": str(tmp_path / "out"), "job": job}
    code = ("import json, sys\n"
            "for name in ('ray', 'torch', 'transformers', 'peft'): sys.modules[name] = None\n"
            "from sienn_ray.export.run import ExportSpec, run_export\n"
            f"files = run_export(ExportSpec.model_validate(json.loads({json.dumps(task)!r})))\n"
            "print(sorted(f.name for f in files))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Modelfile" in done.stdout and "q4_0.gguf" in done.stdout
