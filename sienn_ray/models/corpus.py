"""The text the embedded tokenizers are trained on.

It ships inside the package (not as a data file, not fetched) so that the
tokenizer built from it is byte-identical on every machine and in every
release: nothing here depends on the environment. It mixes the kinds of text a
fine-tuning user sends (prose, instructions and answers, chat, code, numbers)
so common pieces of each become single tokens; anything else still encodes,
byte by byte, because the byte-level alphabet is always complete.

``corpus()`` returns a list of documents; the order is fixed.
"""

from __future__ import annotations

PROSE = """\
The river ran slowly past the old mill, and the children who lived in the village would sit on the stone wall to watch the water turn the great wooden wheel. In the summer the water was low and the wheel hardly moved; in the spring it roared, and the miller had to close the gate before the flood could tear the paddles away.
Nobody remembered who had built the mill. The oldest woman in the village said that her grandmother had told her it was already old when she was a girl, and that the stones of its walls had been carried from the hills on the backs of mules.
Every morning the baker opened his shop before the sun came up. He liked the quiet hour when the streets were empty and the only sound was the fire in the oven. By the time the first customers arrived, the shelves were full of bread, and the whole street smelled of it.
Learning a new skill takes patience. At first everything feels slow and clumsy, and mistakes seem to come one after another. Then, almost without noticing, the hands and the mind begin to remember, and what was difficult becomes ordinary.
A good teacher does not give every answer. A good teacher asks the question that makes the student find the answer alone, and then asks the next question.
The weather changed quickly in the mountains. A clear blue sky in the morning could turn grey by noon, and by the evening snow would be falling on the high passes. Travellers learned to start early, to carry warm clothes, and to turn back when the clouds came down.
She opened the letter carefully, as if the paper itself might break. It was short: three lines, a date, and a name she had not seen written for twenty years.
The library was the largest building in the town after the church. Its reading room had tall windows that faced north, so the light was even all day, and long tables where students sat for hours without speaking.
In the market, the traders called out their prices: apples and pears, onions and garlic, fresh fish on beds of ice, cheese wrapped in cloth, and flowers in tin buckets. People argued, laughed, and carried their baskets home heavy.
When the train finally arrived, it was two hours late. The passengers climbed aboard tired and cold, but nobody complained; they were simply glad to be moving again.
Science is a way of asking questions about the world and testing the answers. An idea that cannot be tested may still be interesting, but it is not yet knowledge. A result that cannot be repeated is not yet a result.
Water boils at one hundred degrees Celsius at sea level, but at a lower temperature high in the mountains, because the air pressure there is lower. This is why cooking takes longer at altitude.
The heart is a muscle that pumps blood through the body. The blood carries oxygen from the lungs to every cell, and carries carbon dioxide back to the lungs so that it can be breathed out.
Plants make their own food from light, water and carbon dioxide. This process, called photosynthesis, also releases oxygen into the air, which is why forests and oceans matter so much to every living thing.
The Earth turns once on its axis every day and travels around the Sun once every year. The Moon travels around the Earth roughly once a month, and its light is only sunlight reflected from its surface.
Money is a promise that other people will accept in exchange for goods and work. A budget is a plan for that promise: how much comes in, how much goes out, and what is kept for later.
A computer program is a list of instructions. The computer follows them exactly, which is both its strength and its weakness: it never gets tired, but it never guesses what you meant.
Good writing is clear before it is clever. Say one thing in each sentence, choose the plain word over the fancy one, and cut every word that does no work.
The city council met on Tuesday evening to discuss the new bridge. Some members wanted to build it quickly; others wanted to wait for a second study of the costs. After three hours they agreed only to meet again next month.
History is not only a list of kings and battles. It is also the story of how ordinary people cooked, worked, travelled, traded, prayed, and raised their children.
The ship left the harbour at dawn. By noon the coast was a thin line behind them, and by evening there was nothing in any direction but water and sky.
Sleep is not wasted time. While we sleep, the body repairs itself and the brain sorts the memories of the day, keeping some and letting others go.
A healthy meal does not need to be complicated: vegetables, some grains, a little protein, and water instead of sugary drinks. Cooking at home makes it easier to know what you are eating.
Music can change the mood of a room in a moment. A slow song can make a crowd quiet; a fast one can make everyone want to dance.
On the first day of school the classroom smelled of new paper and floor polish. The teacher wrote her name on the board, turned around, and asked each child to say one thing they had done during the holidays. Some talked for a long time; others only whispered a word or two.
The garden behind the house was small, but it was never empty. There were tomatoes against the south wall, beans climbing the fence, herbs in old pots by the door, and a pear tree that gave more fruit than the family could ever eat.
Electric cars are becoming common in many countries. They are quiet, they produce no exhaust in the street, and they are cheap to run, although their batteries are still expensive to make and take time to charge.
A map is a simplified picture of a place. It leaves out almost everything, and that is exactly why it is useful: it shows only what you need to find your way.
The old clock in the hall had stopped at a quarter past four. Nobody had wound it since the grandfather died, and after a while the family stopped noticing that it was wrong.
Volcanoes form where hot rock from deep inside the Earth reaches the surface. Some erupt violently, throwing ash high into the sky; others pour out slow rivers of lava that cool into new land.
The football match was tied until the last minute, when a young player who had come on as a substitute scored with a long shot from outside the box. The stadium exploded with noise.
Reading aloud to children helps them learn new words, understand stories, and enjoy books. It also gives parents and children a quiet moment together at the end of a busy day.
Bees visit flowers to collect nectar and pollen. As they move from one flower to the next, they carry pollen with them, and this helps the plants make seeds and fruit.
A company that listens to its customers learns what they need before they ask. A company that does not listen learns only when they leave.
Winter nights in the north are long. In some places the sun does not rise at all for weeks, and people light candles in their windows and gather in warm kitchens to talk.
The recipe was simple: flour, water, salt and yeast. The secret, the old baker said, was time. Let the dough rest, let it rise slowly, and do not hurry the oven.
Rain fell all night on the tin roof. In the morning the paths were muddy, the air was fresh, and every leaf in the garden was shining.
Honesty is easy when the truth is pleasant. It matters most when the truth is hard to say and harder to hear.
The museum had a room full of clocks, another full of maps, and a third full of strange machines that nobody could explain. Children loved the third room best.
The doctor listened to his chest, looked at his throat, and told him to rest, drink plenty of water, and come back in a week if he did not feel better.
Mathematics is the language of patterns. A pattern in numbers, in shapes, or in time can often be described in a single short equation.
The hotel was at the end of a narrow street near the harbour. From the balcony you could see the fishing boats coming in, followed by clouds of hungry gulls.
Friendship is built from small things: a message when someone is ill, a coffee after a hard week, a laugh shared over a silly mistake.
The engineer checked the numbers twice before she signed the report. A bridge, she liked to say, does not forgive rounding errors.
Autumn came early that year. The leaves turned yellow and red in September, the first frost arrived in October, and by November the trees were bare.
Learning to swim begins with learning not to be afraid of the water. Once a child can float calmly, the strokes come much more easily.
The newspaper printed a correction on page two: the meeting would be held on Thursday, not Wednesday, and the mayor's name had been spelled wrongly.
"""

INSTRUCTIONS = """\
### Instruction:
Summarize the following paragraph in one sentence.

### Input:
The museum will be closed on Monday for repairs to the roof. Visitors who bought tickets for that day can use them on any other day this month.

### Response:
The museum is closed on Monday for roof repairs, and Monday tickets are valid on any other day this month.

### Instruction:
Translate the sentence into French.

### Input:
Where is the train station?

### Response:
Où est la gare ?

### Instruction:
Give three tips for staying focused while studying.

### Response:
1. Put your phone in another room.
2. Work in short blocks of time with small breaks.
3. Decide what you want to finish before you start.

### Instruction:
What is the capital of Japan?

### Response:
The capital of Japan is Tokyo.

### Instruction:
Classify the sentiment of this review as positive, negative or neutral.

### Input:
The food was cold and the waiter ignored us for twenty minutes.

### Response:
Negative.

### Instruction:
Write a haiku about autumn.

### Response:
Red leaves on the path,
the wind counts them one by one,
the tree does not mind.

### Instruction:
Explain what a variable is in programming, for a beginner.

### Response:
A variable is a name that holds a value. You can think of it as a labelled box: you put something in it, and later you can look inside or replace what is there.

### Instruction:
Convert 5 kilometres to miles.

### Response:
5 kilometres is about 3.11 miles.

### Instruction:
Correct the grammar in this sentence.

### Input:
She don't like going to the cinema on her own.

### Response:
She doesn't like going to the cinema on her own.

### Instruction:
List the primary colours.

### Response:
Red, yellow and blue.

### Instruction:
Extract the email address from the text.

### Input:
For questions, write to support@example.com or call us during office hours.

### Response:
support@example.com

### Instruction:
Answer the question using the context.

### Input:
Context: The festival starts on 12 June and lasts four days.
Question: On which day does the festival end?

### Response:
The festival ends on 15 June.

Question: How many legs does a spider have?
Answer: A spider has eight legs.

Question: Why is the sky blue?
Answer: Sunlight is scattered by the molecules in the air, and blue light is scattered more than red light, so the sky looks blue.

Question: What is the boiling point of water in Fahrenheit?
Answer: Water boils at 212 degrees Fahrenheit at sea level.

Question: Who wrote the play Romeo and Juliet?
Answer: William Shakespeare.

Question: What does CPU stand for?
Answer: Central Processing Unit.

Question: How do I reverse a list in Python?
Answer: Use my_list.reverse() to reverse it in place, or my_list[::-1] to get a reversed copy.

Q: Is a tomato a fruit or a vegetable?
A: Botanically it is a fruit, but in cooking it is usually treated as a vegetable.

Q: What is the largest ocean?
A: The Pacific Ocean.

Q: How many minutes are in a day?
A: There are 1440 minutes in a day.

### Instruction:
Rewrite the sentence in the passive voice.

### Input:
The committee approved the new budget.

### Response:
The new budget was approved by the committee.

### Instruction:
Write a short apology email for missing a meeting.

### Response:
Dear Anna,

I am sorry that I missed this morning's meeting. I had a problem with my train and could not let you know in time. Could we find another time this week? I am free on Wednesday and Thursday afternoon.

Best regards,
Tom

### Instruction:
Name two renewable sources of energy.

### Response:
Solar power and wind power.

### Instruction:
Sort these numbers from smallest to largest: 42, 7, 19, 3, 88.

### Response:
3, 7, 19, 42, 88.

### Instruction:
Give a synonym for "happy".

### Response:
Cheerful.

### Instruction:
Explain the difference between weather and climate.

### Response:
Weather is what the atmosphere is doing on a particular day: rain, sun, wind, temperature. Climate is the average pattern of weather in a place over many years.

### Instruction:
Write a Python function that checks whether a number is even.

### Response:
def is_even(n: int) -> bool:
    return n % 2 == 0

### Instruction:
Suggest a name for a small bakery.

### Response:
The Morning Loaf.

### Instruction:
Describe a cat in two sentences.

### Response:
A cat is a small, graceful animal with soft fur and sharp claws. It spends much of the day sleeping and the rest of it watching everything around it.

Question: What is the freezing point of water?
Answer: Water freezes at 0 degrees Celsius, or 32 degrees Fahrenheit.

Question: How many continents are there?
Answer: There are seven continents: Africa, Antarctica, Asia, Australia, Europe, North America and South America.

Question: What is the chemical symbol for gold?
Answer: The chemical symbol for gold is Au.

Question: What is the square root of 81?
Answer: The square root of 81 is 9.

Question: Which planet is known as the Red Planet?
Answer: Mars.

Question: What language is spoken in Brazil?
Answer: Portuguese.
"""

CHAT = """\
<|im_start|>system
You are a helpful assistant.<|im_end|>
<|im_start|>user
Hello! Can you help me plan a short trip?<|im_end|>
<|im_start|>assistant
Of course. Where would you like to go, and how many days do you have?<|im_end|>
<|im_start|>user
Two days in the mountains, please. I like walking but not climbing.<|im_end|>
<|im_start|>assistant
Then choose a valley with marked trails. On the first day take an easy loop of about ten kilometres; on the second, a longer walk to a lake or a hut with a view. Check the weather the evening before and start early.<|im_end|>
<|im_start|>user
What is 12 times 12?<|im_end|>
<|im_start|>assistant
12 times 12 is 144.<|im_end|>
<|im_start|>user
Write a function that adds two numbers.<|im_end|>
<|im_start|>assistant
Here is a simple version in Python:

def add(a, b):
    return a + b
<|im_end|>
<|im_start|>user
Thanks, that's all.<|im_end|>
<|im_start|>assistant
You're welcome. Have a good day!<|im_end|>
"""

CODE = '''\
import json
import os
from pathlib import Path


def load_config(path: str) -> dict:
    """Read a JSON config file and return it as a dict."""
    with open(path, "r", encoding="utf-8") as handle:
        return json.load(handle)


class Counter:
    def __init__(self, start: int = 0) -> None:
        self.value = start

    def increment(self, step: int = 1) -> int:
        self.value += step
        return self.value

    def __repr__(self) -> str:
        return f"Counter(value={self.value})"


def fibonacci(n: int) -> list[int]:
    result = [0, 1]
    while len(result) < n:
        result.append(result[-1] + result[-2])
    return result[:n]


def main() -> None:
    config = load_config(os.environ.get("CONFIG", "config.json"))
    for key, value in sorted(config.items()):
        print(f"{key} = {value}")
    if not Path("output").exists():
        Path("output").mkdir(parents=True)


if __name__ == "__main__":
    main()

function greet(name) {
  const message = `Hello, ${name}!`;
  console.log(message);
  return message;
}

const items = [1, 2, 3, 4, 5];
const doubled = items.map((x) => x * 2);
const total = doubled.reduce((sum, x) => sum + x, 0);

SELECT id, name, created_at FROM users WHERE active = 1 ORDER BY created_at DESC LIMIT 10;

#include <stdio.h>

int main(void) {
    for (int i = 0; i < 10; i++) {
        printf("%d\\n", i);
    }
    return 0;
}

{"instruction": "Say hello", "input": "", "output": "Hello!"}
{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello, how can I help?"}]}

def read_lines(path):
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


class Stack:
    """A last-in, first-out collection."""

    def __init__(self):
        self._items = []

    def push(self, item):
        self._items.append(item)

    def pop(self):
        if not self._items:
            raise IndexError("pop from an empty stack")
        return self._items.pop()

    def __len__(self):
        return len(self._items)


try:
    value = int(text)
except ValueError as error:
    print("not a number:", error)
else:
    print(value * 2)
finally:
    print("done")

import numpy as np
import torch

x = torch.randn(4, 8)
weights = torch.zeros(8, 2, requires_grad=True)
loss = (x @ weights).pow(2).mean()
loss.backward()
array = np.arange(10).reshape(2, 5)

$ pip install -e .
$ python -m pytest -q
$ git commit -m "Fix typo in README"
$ curl -X POST http://localhost:8000/v1/jobs -H "Content-Type: application/json" -d '{"model": "tiny"}'
'''

MIXED = """\
Prices: 3.50 EUR, 12.99 USD, 1,250.00 GBP, 100% free, 2024-03-15, 09:30, +1 (555) 010-0199.
Café, naïve, façade, résumé, São Paulo, Zürich, Kraków, Ærø, Straße, smörgåsbord.
Привет, как дела? Γειά σου κόσμε. שלום עולם. مرحبا بالعالم. नमस्ते दुनिया.
你好，世界。今天天气很好。東京は日本の首都です。안녕하세요, 세계.
Emoji: 🙂 😀 🚀 ✅ ❤️ 👍🏽 👩‍💻 🇫🇷 — done… “quoted” ‘single’ «guillemets» ±∞ ≤ ≥ ≠ → ← ×÷ °C µs €£¥.
Tabs\tand\tspaces   and
   indented lines, trailing spaces   
and blank lines:


end.
"""


def _numbers() -> str:
    """Digits and simple arithmetic, written out so the tokenizer sees many numerals."""
    lines = []
    for a in range(1, 21):
        for b in range(1, 11, 3):
            lines.append(f"{a} + {b} = {a + b}; {a} x {b} = {a * b}.")
    lines.extend(f"Item {i}: {i * 37 % 1000:03d} units at {i * 1.25:.2f} each." for i in range(1, 61))
    lines.append(" ".join(str(n) for n in range(0, 200)))
    return "\n".join(lines) + "\n"


def corpus() -> list[str]:
    """The training documents, in a fixed order."""
    return [PROSE, INSTRUCTIONS, CHAT, CODE, MIXED, _numbers()]
