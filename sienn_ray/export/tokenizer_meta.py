"""The tokenizer part of a GGUF file, read from a Hugging Face ``tokenizer.json``.

llama.cpp re-implements the tokenizer from what the file says: the token list
with types, the BPE merges, the special ids, whether BOS/EOS are added, and the
name of the pre-tokenizer (a regex it hard-codes per name). We support byte-level
BPE tokenizers whose pre-tokenizer we can name exactly; anything else is refused
up front rather than written as a file that tokenizes differently.

The merges and the special token ids are read and written by gguf-py's
``SpecialVocab``, as llama.cpp's own converter does; the token list, the
pre-tokenizer name and whether BOS/EOS are added are ours (see ``read_tokenizer``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import gguf

TOKENIZER_FILE = "tokenizer.json"
# The special tokens an export names (llama.cpp's converter also looks for sep/cls/mask, which a causal LM lacks).
SPECIAL_TOKEN_TYPES = ("bos", "eos", "pad", "unk")

# HF pre-tokenizer regexes llama.cpp knows by name (convert_hf_to_gguf's "tokenizer.ggml.pre"):
# Llama 3 splits digits in runs of up to three, Qwen2 one by one.
_WORDS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
_REST = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_SPLIT_REGEX_PRE = {_WORDS + r"\p{N}{1,3}" + _REST: "llama-bpe", _WORDS + r"\p{N}" + _REST: "qwen2"}
SUPPORTED_TOKENIZERS = ("byte-level BPE (GPT-2 pre-tokenizer)", "Llama 3 BPE", "Qwen2 BPE",
                        "SmolLM/StarCoder BPE (digits split, then GPT-2)")
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
# llama.cpp's "smollm" (and "starcoder") pre-tokenizer: every digit alone, then the GPT-2 regex.
_DIGITS_THEN_GPT2 = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                             _BYTE_LEVEL]}


def hf_pre_tokenizer(pre: str) -> dict | None:
    """The tokenizer.json ``pre_tokenizer`` llama.cpp's pre-tokenizer ``pre`` stands for (None: unknown).

    The inverse of ``pre_tokenizer_name``: a GGUF imported as a base gets the
    pre-tokenizer llama.cpp runs for it, so both tokenize the same way.
    """
    if pre == "gpt-2":
        return dict(_BYTE_LEVEL)
    if pre in ("smollm", "starcoder"):
        return json.loads(json.dumps(_DIGITS_THEN_GPT2))
    for regex, name in _SPLIT_REGEX_PRE.items():
        if name == pre:
            return {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    return None


@dataclass
class TokenizerMeta:
    """The tokenizer as GGUF metadata: ``special`` carries the merges, the special ids and the BOS/EOS flags."""

    pre: str
    tokens: list[str]
    token_types: list[int]
    special: gguf.SpecialVocab


def _load_json(tokenizer_dir: Path) -> dict:
    path = Path(tokenizer_dir) / TOKENIZER_FILE
    if not path.is_file():
        raise ValueError(f"no {TOKENIZER_FILE} (only fast tokenizers can be written to GGUF)")
    return json.loads(path.read_text(encoding="utf-8"))


def pre_tokenizer_name(spec: dict) -> str:
    """llama.cpp's name for this tokenizer.json's pre-tokenizer, or ValueError saying why not."""
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise ValueError("the tokenizer is not a byte-level BPE (SentencePiece-style tokenizers are not supported)")
    normalizer = spec.get("normalizer")
    if normalizer is not None and normalizer.get("type") != "NFC":
        raise ValueError(f"tokenizer normalizer {normalizer.get('type')!r} is not supported")
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space"):
        return "gpt-2"
    steps = pre.get("pretokenizers") or []
    if pre.get("type") == "Sequence" and len(steps) == 2 and steps[0].get("type") == "Digits" \
            and steps[0].get("individual_digits") and steps[1].get("type") == "ByteLevel" \
            and steps[1].get("use_regex", True) and not steps[1].get("add_prefix_space"):
        return "smollm"
    if pre.get("type") == "Sequence" and len(steps) == 2 and steps[0].get("type") == "Split" \
            and steps[1].get("type") == "ByteLevel" and not steps[1].get("use_regex", True):
        regex = (steps[0].get("pattern") or {}).get("Regex")
        if regex in _SPLIT_REGEX_PRE:
            return _SPLIT_REGEX_PRE[regex]
    raise ValueError("the tokenizer's pre-tokenizer has no llama.cpp equivalent; supported: "
                     + ", ".join(SUPPORTED_TOKENIZERS))


def tokenizer_problems(tokenizer_dir: Path) -> list[str]:
    """Why this tokenizer cannot go into a GGUF (empty when it can); reads only tokenizer.json."""
    try:
        pre_tokenizer_name(_load_json(tokenizer_dir))
    except ValueError as err:
        return [str(err)]
    return []


def read_tokenizer(tokenizer_dir: Path, vocab_size: int) -> TokenizerMeta:
    """Everything llama.cpp needs to tokenize exactly like the HF tokenizer in ``tokenizer_dir``.

    Read with the ``tokenizers`` library alone (what HF fast tokenizers run on),
    so the export worker never imports transformers.
    """
    from tokenizers import Tokenizer

    tokenizer_dir = Path(tokenizer_dir)
    spec = _load_json(tokenizer_dir)
    pre = pre_tokenizer_name(spec)
    tok = Tokenizer.from_file(str(tokenizer_dir / TOKENIZER_FILE))
    by_id = {i: t for t, i in tok.get_vocab(with_added_tokens=True).items()}
    if max(by_id) >= vocab_size:
        raise ValueError(f"tokenizer has id {max(by_id)} but the model's vocabulary has {vocab_size} rows")
    added = tok.get_added_tokens_decoder()
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(added[i].content)
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    special = gguf.SpecialVocab(tokenizer_dir, load_merges=True, special_token_types=SPECIAL_TOKEN_TYPES,
                                n_vocab=vocab_size)
    ids = special.special_token_ids
    # Whether BOS/EOS are added is measured by encoding with the tokenizer itself: SpecialVocab guesses it
    # from tokenizer_config.json or a "crude parsing" (its words) of the post-processor.
    plain = tok.encode("a", add_special_tokens=False).ids
    full = tok.encode("a", add_special_tokens=True).ids
    special.add_special_token = {"bos": len(full) > len(plain) and full[0] == ids.get("bos"),
                                 "eos": len(full) > len(plain) and full[-1] == ids.get("eos")}
    special.chat_template = None  # the base's; an export writes the job's own (add_tokenizer)
    return TokenizerMeta(pre=pre, tokens=tokens, token_types=[int(t) for t in types], special=special)


def add_tokenizer(writer: gguf.GGUFWriter, meta: TokenizerMeta, chat_template: str | None) -> None:
    """Write the tokenizer (and the chat template) into ``writer``'s metadata."""
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(meta.pre)
    writer.add_token_list(meta.tokens)
    writer.add_token_types(meta.token_types)
    special = copy.copy(meta.special)
    special.chat_template = chat_template or None
    special.add_to_gguf(writer, quiet=True)
