"""Small GGUF files for the model tests: a toy base written by our GGUF writer, and bad headers."""

from __future__ import annotations

import json
from pathlib import Path


class _BaseWeights:
    """The base model's own tensors (no adapter), as the GGUF writer reads them."""

    def __init__(self, folder: Path):
        from sienn_ray.export.merge import SafetensorsFile

        self.file = SafetensorsFile(Path(folder) / "model.safetensors")

    def names(self) -> list[str]:
        return list(self.file.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.file.shape(name)

    def get(self, name: str):
        return self.file.get(name)


def write_toy_gguf(model_dir: Path, path: Path, quant: str = "f32") -> Path:
    """``model_dir`` (an embedded toy model) as a GGUF file, the way an export writes one."""
    from sienn_ray.data.templates import DEFAULT_CHAT_TEMPLATE
    from sienn_ray.export.gguf_writer import write_gguf
    from sienn_ray.export.tokenizer_meta import read_tokenizer

    config = json.loads((Path(model_dir) / "config.json").read_text())
    tokenizer = read_tokenizer(Path(model_dir), config["vocab_size"])
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_gguf(path, _BaseWeights(model_dir), config, tokenizer, quant=quant,
                      chat_template=DEFAULT_CHAT_TEMPLATE, name="toy")


def write_header_only_gguf(path: Path, arch: str) -> Path:
    """A GGUF with only ``general.architecture`` = ``arch`` (enough to be refused or accepted by name)."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return path
