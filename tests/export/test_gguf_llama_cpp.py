"""Every GGUF we write runs in llama.cpp like the merged model runs in transformers.

Each llama.cpp run is a subprocess (``llama_probe.probe``): an abort in
llama.cpp then fails one test instead of hanging the session.
"""

from __future__ import annotations

import json

import gguf
import numpy as np
import pytest
import torch

from export_testkit import FAMILIES, PROMPT
from llama_probe import probe
from sienn_ray.export import gguf_writer

pytest.importorskip("llama_cpp")

EXACT_TYPES = ("f32", "f16", "q8_0")
LOSSY_TYPES = ("q5_0", "q5_1", "q4_0", "q4_1")
N_GREEDY = 20
FILE_TYPE = gguf_writer.FILE_TYPES


class Reference:
    """What transformers does with the merged model on PROMPT."""

    def __init__(self, model, base_model, tokenizer_dir):
        from transformers import AutoTokenizer

        self.ids = AutoTokenizer.from_pretrained(tokenizer_dir)(PROMPT, add_special_tokens=False)["input_ids"]
        seq = list(self.ids)
        with torch.no_grad():
            for _ in range(N_GREEDY):
                seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
            # Teacher-forced logits at every position of prompt + greedy continuation.
            self.logits = model(torch.tensor([seq])).logits[0].double().numpy()
            self.base_first = base_model(torch.tensor([self.ids])).logits[0, -1].double().numpy()
        self.greedy = seq[len(self.ids):]
        self.first = self.logits[len(self.ids) - 1]


@pytest.fixture(scope="module")
def references(merged_models, family_models, family_adapters):
    from transformers import AutoModelForCausalLM

    cache = {}

    def get(family):
        if family not in cache:
            base = AutoModelForCausalLM.from_pretrained(family_models[family]).eval()
            cache[family] = Reference(merged_models(family), base, family_adapters[family])
        return cache[family]

    return get


def _first_step(gguf_files, references, family, quant):
    ref = references(family)
    out = probe(str(gguf_files(family, quant)), prompt_ids=ref.ids, n_greedy=N_GREEDY)
    diff = float(np.abs(np.asarray(out["logits"][-1]) - ref.first).max())
    print(f"{family} {quant}: max |first-step logit diff| = {diff:.5f}")
    return out, diff, ref


@pytest.mark.parametrize("family", FAMILIES)
def test_adapter_changes_the_logits_beyond_the_tolerances(family, references):
    ref = references(family)
    assert np.abs(ref.first - ref.base_first).max() > 0.1, "an export that dropped the LoRA must fail"


@pytest.mark.parametrize("family", FAMILIES)
def test_f32_conversion_is_exact_with_an_f32_cache(family, gguf_files, references):
    ref = references(family)
    out = probe(str(gguf_files(family, "f32")), prompt_ids=ref.ids + ref.greedy, f32_cache=True)
    diff = float(np.abs(np.asarray(out["logits"]) - ref.logits).max())
    print(f"{family} f32 (f32 KV cache): max |logit diff| over all {len(ref.logits)} positions = {diff:.2e}")
    assert diff < 1e-3


@pytest.mark.parametrize("quant", EXACT_TYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_exact_types_match_transformers(family, quant, gguf_files, references):
    out, diff, ref = _first_step(gguf_files, references, family, quant)
    assert diff < 0.05
    assert out["greedy"] == ref.greedy


@pytest.mark.parametrize("quant", LOSSY_TYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_lossy_types_stay_close(family, quant, gguf_files, references):
    out, diff, ref = _first_step(gguf_files, references, family, quant)
    assert diff < 0.5
    assert out["greedy"][0] == ref.greedy[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_tensor_types_follow_llama_cpp_rules(family, gguf_files):
    reader = gguf.GGUFReader(gguf_files(family, "q4_0"))
    types = {t.name: t.tensor_type for t in reader.tensors}
    Q = gguf.GGMLQuantizationType
    for name, qtype in types.items():
        if name.endswith(("_norm.weight", ".bias")) or name.startswith("position_embd"):
            assert qtype == Q.F32, name
    assert types["blk.0.attn_output.weight"] == Q.Q4_0
    # Like llama-quantize: the logits' projection keeps 8 bits (llama.cpp's Q6_K needs rows of 256).
    tied = "output.weight" not in types
    assert types["token_embd.weight"] == (Q.Q8_0 if tied else Q.Q4_0)
    if not tied:
        assert types["output.weight"] == Q.Q8_0
    if family == "qwen2":  # FFN width 136 is not a multiple of 32
        assert tied
        assert types["blk.0.ffn_down.weight"] == Q.F16
        assert types["blk.0.ffn_up.weight"] == Q.Q4_0


@pytest.mark.parametrize("family", ("gpt2", "llama"))
def test_metadata(family, gguf_files, family_models):
    reader = gguf.GGUFReader(gguf_files(family, "q8_0"))
    fields = {name: field.contents() for name, field in reader.fields.items()}
    config = json.loads((family_models[family] / "config.json").read_text())
    assert fields["tokenizer.ggml.model"] == "gpt2"
    assert fields["tokenizer.ggml.pre"] == "gpt-2"
    assert fields["tokenizer.ggml.add_bos_token"] is False
    assert fields["tokenizer.ggml.eos_token_id"] == 0
    assert fields["tokenizer.ggml.padding_token_id"] == 1
    assert "### Instruction:" in fields["tokenizer.chat_template"]
    assert len(fields["tokenizer.ggml.merges"]) > 100
    assert fields["general.file_type"] == gguf.LlamaFileType.MOSTLY_Q8_0
    if family == "gpt2":
        assert fields["gpt2.context_length"] == config["n_positions"]
    else:
        assert fields["llama.rope.freq_base"] == config["rope_parameters"]["rope_theta"]
        assert fields["llama.attention.head_count_kv"] == config["num_key_value_heads"]


@pytest.mark.parametrize("family", ("gpt2", "llama"))
def test_tokenization_matches_hf(family, gguf_files, family_adapters):
    from transformers import AutoTokenizer

    texts = ["Hello, world! It's 2024.", "héllo wörld ✓ naïve café 你好 🚀🦙",
             "  two  spaces\n\n\ttab\r\n end  ", "1234567890 3.14159 1,000,000 007",
             "<|im_start|>user\nhi<|im_end|>\n", "don't won't I'll we've", ""]
    tokenizer = AutoTokenizer.from_pretrained(family_adapters[family])
    out = probe(str(gguf_files(family, "q8_0")), texts=texts)
    for text, ours, default in zip(texts, out["tokens"], out["tokens_default"]):
        expected = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ours == expected, text
        assert default == tokenizer(text)["input_ids"], text  # same BOS/EOS policy (none added)


def _split_regex_tokenizer(folder, pre: str):
    """A byte-level BPE with a Llama 3 or Qwen2 pre-tokenizer, trained on the packaged corpus."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from sienn_ray.export.tokenizer_meta import _SPLIT_REGEX_PRE
    from sienn_ray.models.corpus import corpus

    regex = next(r for r, name in _SPLIT_REGEX_PRE.items() if name == pre)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(
        vocab_size=1024, special_tokens=["<|end_of_text|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end_of_text|>", bos_token="<|end_of_text|>",
                            clean_up_tokenization_spaces=False).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("pre", ["llama-bpe", "qwen2"])
def test_split_regex_tokenizers_match_hf(pre, tmp_path):
    from transformers import AutoTokenizer, LlamaConfig

    from export_testkit import build_model, make_adapter
    from sienn_ray.export.gguf_writer import write_gguf
    from sienn_ray.export.merge import merged_weights
    from sienn_ray.export.tokenizer_meta import read_tokenizer

    tokenizer_dir = _split_regex_tokenizer(tmp_path / "tok", pre)
    config = LlamaConfig(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128)
    base = build_model(tmp_path / "base", config, tokenizer_dir)
    adapter = make_adapter(base, tmp_path / "adapter", train_steps=0)
    meta = read_tokenizer(adapter, 1024)
    assert meta.pre == pre
    config = json.loads((base / "config.json").read_text())
    path = write_gguf(tmp_path / "m.gguf", merged_weights(base, adapter), config, meta, quant="f16",
                      chat_template=None, name=pre)
    texts = ["Numbers 1234567 and 3.14159!", "  spaces\n\n\ttabs\r\n", "héllo wörld 你好 🚀", "don't WE'LL I'M",
             "<|end_of_text|>after"]
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    out = probe(str(path), texts=texts)
    for text, ours, default in zip(texts, out["tokens"], out["tokens_default"]):
        assert ours == tokenizer(text, add_special_tokens=False)["input_ids"], text
        assert default == tokenizer(text)["input_ids"], text


@pytest.mark.parametrize("quant", ["q8_0", "q5_1", "q4_0"])
@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
def test_quantized_tensors_are_byte_identical_to_llama_cpp(family, quant, gguf_files, tmp_path):
    """llama.cpp's own quantizer, run on our f32 file, writes exactly the tensors we wrote."""
    from llama_probe import llama_quantize

    ours = gguf.GGUFReader(gguf_files(family, quant))
    tensors = {t.name: t for t in ours.tensors}
    Q = gguf.GGMLQuantizationType
    logits_matrix = "output.weight" if "output.weight" in tensors else "token_embd.weight"
    override = {} if quant == "q8_0" else {
        "output_type" if logits_matrix == "output.weight" else "token_embd_type": int(Q.Q8_0)}
    theirs_path = tmp_path / "llama-cpp.gguf"
    llama_quantize(str(gguf_files(family, "f32")), str(theirs_path), int(FILE_TYPE[quant]), **override)
    theirs = {t.name: t for t in gguf.GGUFReader(theirs_path).tensors}
    assert set(theirs) == set(tensors)
    for name, tensor in tensors.items():
        assert theirs[name].tensor_type == tensor.tensor_type, name
        ours_bytes, theirs_bytes = (np.asarray(t.data).view(np.uint8) for t in (tensor, theirs[name]))
        assert np.array_equal(ours_bytes, theirs_bytes), name
