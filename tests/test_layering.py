"""The pure modules (validation, templating, schemas, store, GGUF writing...) never import Ray."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import sienn_ray

# Ray glue lives only in these packages/modules.
RAY_GLUE = ("sienn_ray.api", "sienn_ray.jobs.registry", "sienn_ray.jobs.runner", "sienn_ray.jobs.cluster",
            "sienn_ray.jobs.placement_groups",
            "sienn_ray.jobs.client", "sienn_ray.jobs.calibration", "sienn_ray.services.connect", "sienn_ray.train.launch", "sienn_ray.train.worker", "sienn_ray.train.report",
            "sienn_ray.inference.deployment", "sienn_ray.export.ray_task", "sienn_ray.cli", "sienn_ray.ops",
            "sienn_ray.__main__", "sienn_ray.evaluation.task")


def _pure_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(sienn_ray.__path__, "sienn_ray."):
        if not any(info.name == g or info.name.startswith(g + ".") for g in RAY_GLUE):
            names.append(info.name)
    return names


def test_pure_modules_import_with_ray_unimportable():
    modules = _pure_modules()
    assert "sienn_ray.data.templates" in modules and "sienn_ray.store.writer" in modules
    assert {"sienn_ray.jobs.core", "sienn_ray.jobs.records", "sienn_ray.jobs.lifecycle", "sienn_ray.jobs.queue",
            "sienn_ray.services.submit",
            "sienn_ray.services.control", "sienn_ray.services.exports", "sienn_ray.store.reader"} <= set(modules)
    assert "sienn_ray.evaluation.run" in modules and "sienn_ray.evaluation.metrics" in modules
    assert {"sienn_ray.auth.keys", "sienn_ray.auth.resolver", "sienn_ray.auth.rate_limits", "sienn_ray.auth.quotas",
            "sienn_ray.auth.routes", "sienn_ray.auth.web", "sienn_ray.auth.audit", "sienn_ray.auth.config",
            "sienn_ray.schemas.auth", "sienn_ray.services.keys"} <= set(modules)
    assert {"sienn_ray.models.gguf_import", "sienn_ray.models.pretrained", "sienn_ray.models.roots",
            "sienn_ray.models.atomic", "sienn_ray.models.safetensors_files", "sienn_ray.models.lora_adapter",
            "sienn_ray.models.model_config", "sienn_ray.train.state"} <= set(modules)
    assert {"sienn_ray.data.stats", "sienn_ray.data.base_tokenizer", "sienn_ray.data.arrow_examples"} <= set(modules)
    assert {"sienn_ray.data.chat_format", "sienn_ray.schemas.openai_jobs", "sienn_ray.schemas.openai_files",
            "sienn_ray.services.openai_ids", "sienn_ray.services.openai_auto", "sienn_ray.services.openai_views",
            "sienn_ray.services.openai_files", "sienn_ray.services.openai_fine_tuning",
            "sienn_ray.services.openai_models", "sienn_ray.services.checkpoints", "sienn_ray.train.evaluate",
            "sienn_ray.train.hooks", "sienn_ray.train.checkpoints", "sienn_ray.train.collectives",
            "sienn_ray.train.early_stopping", "sienn_ray.train.progress", "sienn_ray.train.loop"} <= set(modules)
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ImportError('ray is not importable here')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    if m.endswith('__main__'): continue\n"
        "    __import__(m)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
