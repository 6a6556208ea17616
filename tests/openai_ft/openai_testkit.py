"""Helpers for the OpenAI fine-tuning API tests: chat files in OpenAI's format, the local API handle."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
from jobs_fakes import FakeCluster  # noqa: E402


def chat_rows(n: int, start: int = 0) -> bytes:
    """``n`` chat records in OpenAI's format: "What is the code word for item <i>?" -> a distinct word."""
    rows = []
    for i in range(start, start + n):
        rows.append({"messages": [{"role": "system", "content": "You answer with the code word."},
                                  {"role": "user", "content": f"What is the code word for item {i}?"},
                                  {"role": "assistant", "content": f"The code word for item {i} is {CODE_WORDS[i]}."}]})
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


CODE_WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "juniper",
              "kestrel", "lagoon", "meadow", "nectar", "onyx", "pepper", "quartz", "raven", "saffron", "tundra"]


# Two facts, five ways of asking each: a random-weight toy base learns them in a few dozen steps.
FACTS = {"code word": "The code word is amber.", "gate number": "The gate number is 4417."}
ASKED = ["What is the {}?", "Tell me the {}.", "Which {} is it?", "Say the {}, please.", "The {}?"]


def fact_rows(system: str = "You know two facts.") -> bytes:
    """Ten chat records teaching ``FACTS`` (a final assistant reply each; the first turn of some at weight 0)."""
    rows = []
    for topic, answer in FACTS.items():
        for question in ASKED:
            rows.append({"messages": [{"role": "system", "content": system},
                                      {"role": "user", "content": question.format(topic)},
                                      {"role": "assistant", "content": answer}]})
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@dataclass
class LocalApi:
    url: str
    core: object  # RegistryCore
    services: object  # Services
    cluster: FakeCluster

    def client(self):
        from openai import OpenAI

        return OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0, timeout=60)
