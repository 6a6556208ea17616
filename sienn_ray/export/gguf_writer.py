"""Writing a merged model as one GGUF file, streaming one tensor at a time.

The file is written in two passes over the tensor list: first every tensor's
name, shape and type (known from the checkpoint headers without loading), so the
header can be written; then each tensor is loaded, merged, converted to
llama.cpp's layout, quantized in row chunks and handed to ``GGUFWriter.write_tensor_data``.
Peak memory is about one float32 tensor (plus its quantized bytes), whatever the model's size.

Types follow llama.cpp's converter: 1-D tensors, norms, biases and position
embeddings stay F32 (llama.cpp aborts on quantized ones at evaluation); a
matrix whose rows are not a multiple of the block size falls back to F16;
everything else gets the requested type. Like ``llama-quantize``, the 4- and
5-bit types keep the output projection (or the token embedding, when it is
tied to the output) at higher precision: llama.cpp uses Q6_K there, or Q8_0
when the row length is not a multiple of 256; ``gguf.quants`` cannot write
Q6_K, so we always use Q8_0. ``gguf.quants`` quantizes byte-identically to
llama.cpp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from pathlib import Path

import gguf
import numpy as np

from . import gguf_arch
from .merge import WeightSource
from .tokenizer_meta import TokenizerMeta, add_tokenizer

Q = gguf.GGMLQuantizationType
GGML_TYPES = {"f32": Q.F32, "f16": Q.F16, "q8_0": Q.Q8_0, "q5_1": Q.Q5_1, "q5_0": Q.Q5_0,
              "q4_1": Q.Q4_1, "q4_0": Q.Q4_0}
FILE_TYPES = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q5_1": gguf.LlamaFileType.MOSTLY_Q5_1,
              "q5_0": gguf.LlamaFileType.MOSTLY_Q5_0, "q4_1": gguf.LlamaFileType.MOSTLY_Q4_1,
              "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}
_LOW_BIT = (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1)
# Rows quantized per call: bounds the temporaries numpy makes (~16 MB of float32 input).
CHUNK_ELEMENTS = 1 << 22

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PlannedTensor:
    source: str
    rule: gguf_arch.TensorRule
    shape: tuple[int, ...]
    qtype: gguf.GGMLQuantizationType

    @property
    def nbytes(self) -> int:
        if self.qtype == Q.F32:
            return prod(self.shape) * 4
        if self.qtype == Q.F16:
            return prod(self.shape) * 2
        return prod(gguf.quant_shape_to_byte_shape(self.shape, self.qtype))


def tensor_type(gguf_name: str, shape: tuple[int, ...], quant: str, *, is_output: bool = False
                ) -> gguf.GGMLQuantizationType:
    """The GGML type a tensor is stored in for export type ``quant``.

    ``is_output``: the tensor computes the logits (``output.weight``, or a tied ``token_embd.weight``).
    """
    keep_f32 = (len(shape) <= 1 or gguf_name.endswith("_norm.weight") or not gguf_name.endswith(".weight")
                or gguf_name.startswith("position_embd."))
    if keep_f32:
        return Q.F32
    qtype = GGML_TYPES[quant]
    if is_output and qtype in _LOW_BIT:
        qtype = Q.Q8_0
    if shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
        return Q.F16
    return qtype


def plan_tensors(weights: WeightSource, config: dict, quant: str) -> list[PlannedTensor]:
    """Every tensor's GGUF name, shape and type, from the checkpoint headers alone."""
    tensor_map = gguf_arch.tensor_name_map(config)
    rules = {name: gguf_arch.tensor_rule(config, name, tensor_map) for name in weights.names()}
    rules = {name: rule for name, rule in rules.items() if rule is not None}
    output = "output.weight" if any(r.name == "output.weight" for r in rules.values()) else "token_embd.weight"
    plan = []
    for name, rule in rules.items():
        shape = rule.out_shape(weights.shape(name))
        qtype = tensor_type(rule.name, shape, quant, is_output=rule.name == output)
        plan.append(PlannedTensor(name, rule, shape, qtype))
    seen = set()
    for item in plan:
        if item.rule.name in seen:
            raise ValueError(f"two checkpoint tensors map to GGUF tensor {item.rule.name!r}")
        seen.add(item.rule.name)
    return plan


def write_gguf(path: Path, weights: WeightSource, config: dict, tokenizer: TokenizerMeta, *, quant: str,
               chat_template: str | None, name: str, progress: Progress | None = None) -> Path:
    """Write the merged model to ``path`` as a GGUF of type ``quant`` (f32, f16, q8_0, q5_*, q4_*)."""
    plan = plan_tensors(weights, config, quant)
    writer = gguf.GGUFWriter(path, gguf_arch.GGUF_ARCH[config["model_type"]])
    try:
        writer.add_name(name)
        gguf_arch.add_hparams(writer, config)
        writer.add_file_type(FILE_TYPES[quant])
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        add_tokenizer(writer, tokenizer, chat_template)
        for item in plan:
            dtype = np.float16 if item.qtype == Q.F16 else np.float32
            writer.add_tensor_info(item.rule.name, item.shape, np.dtype(dtype), item.nbytes, raw_dtype=item.qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total, done = sum(item.nbytes for item in plan), 0
        for item in plan:
            _write_tensor(writer, item, weights)
            done += item.nbytes
            if progress:
                progress(done, total)
    finally:
        writer.close()
    return Path(path)


def _write_tensor(writer: gguf.GGUFWriter, item: PlannedTensor, weights: WeightSource) -> None:
    """Convert and quantize one tensor, in row chunks, into one buffer that ``GGUFWriter`` writes."""
    data = item.rule.apply(weights.get(item.source))
    if data.shape != item.shape:
        raise ValueError(f"{item.source}: expected shape {item.shape}, got {data.shape}")
    if item.qtype == Q.F32:
        writer.write_tensor_data(data.astype(np.float32, copy=False))
        return
    # Row chunks bound quantize's temporaries; the buffer is the tensor's size in its GGML type
    # (a quarter of the float32 data for q8_0, an eighth for q4_0), so the peak stays about one tensor.
    rows = data.reshape(-1, data.shape[-1]) if data.ndim > 1 else data.reshape(1, -1)
    step = max(1, CHUNK_ELEMENTS // rows.shape[1])
    if rows.shape[0] <= step:  # one chunk: no buffer to copy into
        writer.write_tensor_data(gguf.quants.quantize(rows, item.qtype))
        return
    out = np.empty(item.nbytes, dtype=np.uint8)
    done = 0
    for start in range(0, rows.shape[0], step):
        chunk = gguf.quants.quantize(rows[start:start + step], item.qtype).reshape(-1).view(np.uint8)
        out[done:done + chunk.size] = chunk
        done += chunk.size
    writer.write_tensor_data(out)
