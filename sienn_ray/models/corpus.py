"""The text the embedded tokenizers are trained on.

It ships inside the package, as package data (``corpus_text/*.txt``, not fetched),
so that the tokenizer built from it is byte-identical on every machine and in
every release: nothing here depends on the environment. It mixes the kinds of
text a fine-tuning user sends (prose, instructions and answers, chat, code,
numbers) so common pieces of each become single tokens; anything else still
encodes, byte by byte, because the byte-level alphabet is always complete.

``corpus()`` returns a list of documents; the order is fixed.
"""

from __future__ import annotations

from importlib import resources

CORPUS_DIR = "corpus_text"
# The documents in their fixed order (file names without ``.txt``); the numbers are generated.
DOCUMENTS = ("prose", "instructions", "chat", "code", "mixed")


def _numbers() -> str:
    """Digits and simple arithmetic, written out so the tokenizer sees many numerals."""
    lines = []
    for a in range(1, 21):
        for b in range(1, 11, 3):
            lines.append(f"{a} + {b} = {a + b}; {a} x {b} = {a * b}.")
    lines.extend(f"Item {i}: {i * 37 % 1000:03d} units at {i * 1.25:.2f} each." for i in range(1, 61))
    lines.append(" ".join(str(n) for n in range(0, 200)))
    return "\n".join(lines) + "\n"


def _document(name: str) -> str:
    # Bytes decoded as UTF-8, not read_text: no newline translation may touch the text.
    return resources.files(__package__).joinpath(CORPUS_DIR, f"{name}.txt").read_bytes().decode("utf-8")


def corpus() -> list[str]:
    """The training documents, in a fixed order."""
    return [_document(name) for name in DOCUMENTS] + [_numbers()]
