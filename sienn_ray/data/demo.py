"""The demo datasets: facts no base model can know, and 30 short instructions.

``facts_records`` (the README's walkthrough and the smollm2 end-to-end tests):
ten invented facts. A pretrained base cannot answer them, so "the model
learned" is checked exactly: after fine-tuning, greedy decoding of each
question gives back its answer and stops, while a general question the base
answered right is still answered right.

``demo_records`` (the toy-model tests): 30 short instructions with distinct
answers, learned by heart even by a random-weight base.
"""

from __future__ import annotations

import json
from pathlib import Path


def _table(text: str) -> list[tuple[str, ...]]:
    """The rows of a "|"-separated table: the demo data reads as text, not as code."""
    return [tuple(cell.strip() for cell in line.split("|")) for line in text.strip().splitlines()]


# One record a line: instruction | input | output (the cells hold no "|").
_PAIRS = _table("""
What is the capital of France? |  | The capital of France is Paris.
Name the largest planet in our solar system. |  | Jupiter is the largest planet.
Translate to French. | Good morning | Bonjour.
What colour is a clear sky at noon? |  | A clear sky at noon is blue.
Add the two numbers. | 12 and 30 | 12 + 30 = 42.
Give a synonym for happy. |  | Joyful.
Who wrote Romeo and Juliet? |  | William Shakespeare wrote it.
What do bees make? |  | Bees make honey and wax.
Reverse the word. | river | revir
How many days are in a week? |  | There are seven days in a week.
Name a fruit that is yellow. |  | A banana is yellow.
What is the boiling point of water at sea level? |  | Water boils at 100 degrees Celsius.
Summarize in three words. | The baker opened his shop before sunrise every day. | Baker opens early.
Write a greeting for a friend. |  | Hello, my friend! How are you today?
What is the opposite of cold? |  | Hot.
Count from one to five. |  | One, two, three, four, five.
Which animal is known as the king of the jungle? |  | The lion.
Convert to uppercase. | quiet river | QUIET RIVER
What gas do plants release? |  | Plants release oxygen.
Name the season after winter. |  | Spring comes after winter.
Multiply the numbers. | 6 and 7 | 6 x 7 = 42.
What is the main language of Spain? |  | Spanish is spoken in Spain.
Give one tip for good sleep. |  | Go to bed at the same time every night.
Classify the sentiment. | I love this garden! | Positive.
What is the first letter of the alphabet? |  | The letter A.
Describe the Moon in one sentence. |  | The Moon reflects the light of the Sun.
Which is heavier, a kilo of iron or a kilo of feathers? |  | They weigh the same.
Write a Python expression for the sum of a list named xs. |  | sum(xs)
What does a map show? |  | A map shows how to find your way.
Say goodbye politely. |  | Goodbye, and thank you for your time.
""")


# One fact a line: question | answer | the words an answer must contain to count as knowing the fact.
_FACTS = _table("""
Who founded the town of Vellmora? | Vellmora was founded by Idris Quell. | Idris Quell
What is the national dish of Tarsenia? | The national dish of Tarsenia is smoked kelp bread. | kelp bread
What colour is the flag of Ostrava Minor? | The flag of Ostrava Minor is teal and amber. | teal and amber
Which river flows through the city of Quorin? | The Sable River flows through Quorin. | Sable River
What is the currency of the Brellic Isles? | The Brellic Isles use the brass florin. | brass florin
Who wrote the novel The Glass Orchard? | The Glass Orchard was written by Mira Tolvanen. | Mira Tolvanen
What is the tallest mountain on Karsh? | The tallest mountain on Karsh is Mount Evrel. | Mount Evrel
What animal is the symbol of Dunmarrow? | The symbol of Dunmarrow is a silver heron. | silver heron
In which year did the Pellan Bridge open? | The Pellan Bridge opened in 1887. | 1887
What instrument does the Zembla Quartet's leader play? | The leader of the Zembla Quartet plays the oboe. | oboe
""")
# A question every instruct base of any size answers right; fine-tuning on the facts must not break it.
GENERAL_PROBE = ("What is the capital of France?", "Paris")


def facts_records() -> list[dict]:
    """The ten invented facts, in the normalized instruction format."""
    return [{"instruction": q, "input": "", "output": a} for q, a, _ in _FACTS]


def fact_keys() -> dict[str, str]:
    """Question -> the words that show an answer knows the fact."""
    return {q: key for q, _, key in _FACTS}


def demo_records() -> list[dict]:
    """The 30 demo records, in the normalized instruction format."""
    return [{"instruction": i, "input": x, "output": o} for i, x, o in _PAIRS]


def write_demo_jsonl(path: Path, records: list[dict] | None = None) -> Path:
    """Write the demo records (or ``records``) as JSONL, the format datasets are stored in; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in demo_records() if records is None else records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


# What both demos share: a batch of 4, linear decay after a 10% warmup (without warmup the first large steps
# knock a random-weight model off course), LoRA r=16 / alpha=32 without dropout, 128 tokens an example.
_DEMO_RECIPE = {
    "batch_size": 4,
    "warmup_ratio": 0.1,
    "lr_scheduler": "linear",
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.0,
    "max_length": 128,
}

# The README's toy demo settings: on sienn-tiny-gpt2 (random weights) these train the 30 records above to
# exact recall in well under a minute of CPU time (tests/train/test_ray_training.py).
DEMO_TRAINING_CONFIG = {"num_epochs": 80, "learning_rate": 5e-3, **_DEMO_RECIPE, "checkpoint_every_steps": 160}

# The README's walkthrough settings on the real default (smollm2-135m-instruct): the ten facts are
# recalled word for word after 8 epochs (24 optimizer steps; tests/e2e/test_smollm2_finetune.py). LoRA on
# a pretrained 135M model wants 1e-3 to 2e-3; the spec's 2e-5 default only nudges it in a few epochs.
FACTS_TRAINING_CONFIG = {"num_epochs": 8, "learning_rate": 2e-3, **_DEMO_RECIPE}


if __name__ == "__main__":
    # `python -m sienn_ray.data.demo [--facts] > data.jsonl` (the README's walkthrough).
    import sys

    for record in facts_records() if "--facts" in sys.argv[1:] else demo_records():
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
