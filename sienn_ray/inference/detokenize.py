"""A row's generated text, decoded a token at a time, cut at its stop strings: plain Python, no Ray.

``tokenizers``' ``DecodeStream`` turns each new token into the text it adds,
looking back only a few tokens, so a step costs the same at token 10 and token
4,000 (decoding the whole output at every step made generation quadratic). It
holds back a token that ends inside a multi-byte UTF-8 character until the
character is complete, so a streamed chunk never splits one.

Stop strings are found exactly across chunk boundaries: the text not yet
released is kept only while it could still be the start of a stop string, and
the search runs over that short tail plus the new piece, never over the whole
text.
"""

from __future__ import annotations

from typing import Any


class TextStream:
    """Text of one generation: ``push`` a token, get the text it releases; ``stopped`` once a stop string ends it."""

    def __init__(self, tokenizer: Any, stops: tuple[str, ...]):
        from tokenizers.decoders import DecodeStream

        self._tokenizer = tokenizer
        self._backend = tokenizer.backend_tokenizer
        self._decoder = DecodeStream(skip_special_tokens=True)
        self._held_ids: list[int] = []  # tokens the decoder has not turned into text yet (a split character)
        self._stops = stops
        self._pending = ""  # released by the decoder, kept back while it may begin a stop string
        self._parts: list[str] = []
        self.stopped = False

    def push(self, token: int) -> str:
        """Add one generated token; returns the text now final (possibly empty)."""
        piece = self._decoder.step(self._backend, token)
        if piece is None:
            self._held_ids.append(token)
            return ""
        self._held_ids.clear()
        return self._release(piece, final=False)

    def finish(self) -> str:
        """The generation ended without a stop string: release everything, a split last character included."""
        # Decoding only the held tokens gives what decoding the whole output gives at its end: the
        # incomplete bytes as U+FFFD, after text that was complete.
        tail = self._tokenizer.decode(self._held_ids, skip_special_tokens=True) if self._held_ids else ""
        self._held_ids.clear()
        return self._release(tail, final=True)

    @property
    def text(self) -> str:
        """Everything released so far."""
        return "".join(self._parts)

    def _release(self, piece: str, final: bool) -> str:
        if self.stopped:
            return ""
        text = self._pending + piece
        cut = _first_stop(text, self._stops)
        if cut is not None:
            text, keep, self.stopped = text[:cut], "", True
        elif final:
            keep = ""
        else:
            hold = _stop_prefix_at_end(text, self._stops)
            text, keep = text[: len(text) - hold], text[len(text) - hold:]
        self._pending = keep
        if text:
            self._parts.append(text)
        return text


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    """Where the earliest stop string in ``text`` starts."""
    found = [index for index in (text.find(stop) for stop in stops) if index != -1]
    return min(found) if found else None


def _stop_prefix_at_end(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that is the start of a stop string (it must wait)."""
    hold = 0
    for stop in stops:
        # Only where the stop's first character occurs in the last len(stop) - 1 characters.
        index = text.find(stop[0], max(0, len(text) - len(stop) + 1))
        while index != -1 and len(text) - index > hold:
            if stop.startswith(text[index:]):
                hold = len(text) - index
                break
            index = text.find(stop[0], index + 1)
    return hold


__all__ = ["TextStream"]
