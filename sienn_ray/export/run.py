"""One export, start to finish, as plain Python: validate, write to a temp folder, move into place.

``export_problems`` runs in the API before any work (it reads only small JSON
files); ``run_export`` runs on a cluster worker (``task.py``) and returns the
files it wrote with their sizes and sha256. ``ExportSpec`` is what a worker gets;
``ray_task.py`` is the Ray task that runs it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ..data.templates import PromptTemplate
from ..errors import BadRequest
from ..models.lora_adapter import adapter_present
from ..models.atomic import replace_dir
from ..schemas.exports import DEFAULT_QUANTIZATION, QUANTIZATIONS, ExportFile, ExportFormatInfo, ExportFormats
from . import gguf_arch
from .gguf_writer import write_gguf
from .merge import copy_adapter, load_json, merged_weights, save_merged_model
from .model_card import model_card
from .modelfile import build_modelfile
from .prompt_formats import TemplateNotSupported, gguf_chat_template, ollama_template
from .tokenizer_meta import read_tokenizer, tokenizer_problems

QUANTIZED_FORMATS = ("gguf", "ollama")
# Single-core throughputs in bytes of float32 weights per second: half of what bench/export.py
# measured on a 2-core VM (f32 700 MB/s, q8_0 450, q4_0 400, q5_1 300), for slower disks.
_BYTES_PER_SECOND = {"pytorch": 150e6, "f32": 350e6, "f16": 300e6, "q8_0": 220e6, "q5_0": 180e6, "q5_1": 150e6,
                     "q4_0": 200e6, "q4_1": 170e6}
_STARTUP_SECONDS = 10.0  # scheduling the task and its imports

Progress = Callable[[str], None]


class ExportSpec(BaseModel):
    """Everything a worker needs to run one export; crosses to the Ray task as a plain dict."""

    model_config = ConfigDict(extra="forbid")

    export_id: str
    job_id: str
    format: str
    quantization: str | None
    base_dir: str
    adapter_dir: str
    out_dir: str
    job: dict
    dataset: dict | None = None


def export_formats() -> ExportFormats:
    """What GET /api/export-formats answers."""
    levels = list(QUANTIZATIONS)
    return ExportFormats(formats=[
        ExportFormatInfo(name="pytorch", description="Merged model as safetensors (+ config, tokenizer, "
                         "generation config), the unmerged PEFT adapter and a model card",
                         supports_quantization=False),
        ExportFormatInfo(name="ollama", description="Ollama package: GGUF + Modelfile with the job's prompt template",
                         supports_quantization=True, quantization_levels=levels,
                         default_quantization=DEFAULT_QUANTIZATION),
        ExportFormatInfo(name="gguf", description="GGUF for llama.cpp (merged, quantized)",
                         supports_quantization=True, quantization_levels=levels,
                         default_quantization=DEFAULT_QUANTIZATION),
    ])


def resolve_quantization(fmt: str, quantization: str | None) -> str | None:
    """The quantization an export uses: default q8_0 for GGUF formats, none (and none allowed) for pytorch."""
    if fmt not in QUANTIZED_FORMATS:
        if quantization is not None:
            raise BadRequest(f"quantization is only for gguf and ollama exports, not {fmt}")
        return None
    quantization = quantization or DEFAULT_QUANTIZATION
    if quantization not in QUANTIZATIONS:
        raise BadRequest(f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    return quantization


def export_problems(fmt: str, base_dir: Path, adapter_dir: Path) -> list[str]:
    """Every reason this job cannot be exported in ``fmt`` (empty when it can)."""
    base_dir, adapter_dir = Path(base_dir), Path(adapter_dir)
    if not adapter_present(adapter_dir):
        return ["the job's adapter is missing (adapter_config.json or its weights not found)"]
    if not (base_dir / "config.json").is_file():
        return ["the job's base model is missing (config.json not found)"]
    if fmt not in QUANTIZED_FORMATS:
        return []
    problems = gguf_arch.config_problems(load_json(base_dir / "config.json"))
    problems += tokenizer_problems(tokenizer_dir(base_dir, adapter_dir))
    if fmt == "ollama":
        try:
            ollama_template(PromptTemplate.load(adapter_dir))
        except (TemplateNotSupported, OSError, ValueError) as err:
            problems.append(str(err))
    return problems


def estimate_seconds(base_dir: Path, fmt: str, quantization: str | None) -> float:
    """A rough duration from the size of the base checkpoint (as float32)."""
    size = 0
    for path in Path(base_dir).glob("*.safetensors"):
        size += path.stat().st_size
    config = load_json(Path(base_dir) / "config.json")
    dtype = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    if "16" in dtype:
        size *= 2
    return _STARTUP_SECONDS + size / _BYTES_PER_SECOND[quantization or "pytorch"]


def tokenizer_dir(base_dir: Path, adapter_dir: Path) -> Path:
    """The job saves its tokenizer with the adapter; older adapters may rely on the base's."""
    return adapter_dir if (Path(adapter_dir) / "tokenizer.json").is_file() else Path(base_dir)


def export_title(task: ExportSpec) -> str:
    """A file-name-safe name like ``sienn-tiny-llama-job_3f9a0c1d``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(task.job["model_name"]).name).strip("-.").lower() or "model"
    return f"{base}-{task.job_id}"


def run_export(task: ExportSpec, progress: Progress | None = None) -> list[ExportFile]:
    """Write the export into ``task.out_dir`` (replacing it whole) and describe its files."""
    out = Path(task.out_dir)
    tmp = out.parent / f".{out.name}.{task.export_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write(task, tmp, progress or (lambda _msg: None))
        files = describe_files(tmp)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files


def _write(task: ExportSpec, folder: Path, progress: Progress) -> None:
    base_dir, adapter_dir = Path(task.base_dir), Path(task.adapter_dir)
    template = PromptTemplate.load(adapter_dir)
    title = export_title(task)
    gguf_name = None
    if task.format == "pytorch":
        progress("Merging the adapter into the base model")
        save_merged_model(base_dir, adapter_dir, folder)
        template.save(folder)
        copy_adapter(adapter_dir, folder / "adapter")
    else:
        config = load_json(base_dir / "config.json")
        gguf_name = f"{title}-{task.quantization}.gguf"
        progress("Reading the tokenizer and the adapter")
        tokenizer = read_tokenizer(tokenizer_dir(base_dir, adapter_dir), config["vocab_size"])
        write_gguf(folder / gguf_name, merged_weights(base_dir, adapter_dir), config, tokenizer,
                   quant=task.quantization, chat_template=gguf_chat_template(template), name=title,
                   progress=lambda done, total: progress(f"Writing GGUF: {100 * done // max(total, 1)}%"))
        template.save(folder)
        if task.format == "ollama":
            modelfile = build_modelfile(gguf_name, template, gguf_arch.context_length(config), title=title)
            (folder / "Modelfile").write_text(modelfile, encoding="utf-8")
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) + ["README.md"]
    card = model_card(title=title, job=task.job, dataset=task.dataset, template=template, fmt=task.format,
                      quantization=task.quantization, files=names, gguf_name=gguf_name)
    (folder / "README.md").write_text(card, encoding="utf-8")


def describe_files(folder: Path) -> list[ExportFile]:
    """Relative name, size and sha256 of every file under ``folder``, sorted by name."""
    out = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        out.append(ExportFile(name=path.relative_to(folder).as_posix(), size_bytes=path.stat().st_size,
                              sha256=digest.hexdigest()))
    return out

