"""A base model's tokenizer for upload statistics, read with the ``tokenizers`` library alone.

transformers' ``AutoTokenizer`` wraps this very ``tokenizer.json`` and gives the same ids, but importing
it pulls in torch: ten seconds and more on the first upload of an API process. This reads the same
files and offers what ``templates.template_for`` and ``stats.dataset_statistics`` call; a test checks
that both give the same template and the same statistics for every built-in base.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class BaseTokenizer:
    """The parts of a transformers tokenizer that templating and counting use, from a model folder."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        folder = Path(folder)
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        config_file = folder / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        self.eos_token = _token_text(config.get("eos_token"))
        self.bos_token = _token_text(config.get("bos_token"))
        self.bos_token_id = self._tokenizer.token_to_id(self.bos_token) if self.bos_token else None
        jinja = folder / "chat_template.jinja"
        self.chat_template = jinja.read_text(encoding="utf-8") if jinja.is_file() else config.get("chat_template")
        # transformers puts BOS before the text itself when the config asks for it, not via tokenizer.json.
        self._add_bos = bool(config.get("add_bos_token")) and self.bos_token_id is not None

    def __call__(self, text: str | list[str], add_special_tokens: bool = True) -> dict[str, Any]:
        """``{"input_ids": ...}`` for one text or a list of them, as a transformers tokenizer returns it."""
        texts = [text] if isinstance(text, str) else text
        ids = [enc.ids for enc in self._tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)]
        if add_special_tokens and self._add_bos:
            ids = [row if row[:1] == [self.bos_token_id] else [self.bos_token_id] + row for row in ids]
        return {"input_ids": ids[0] if isinstance(text, str) else ids}


def _token_text(token: Any) -> str | None:
    """A special token as the config writes it: a string, or an AddedToken dict with its ``content``."""
    return token.get("content") if isinstance(token, dict) else token
