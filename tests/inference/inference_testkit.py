"""Constants shared by the inference tests and their fixtures."""

GREEDY_TOKENS = 24
PROMPTS = ["Write a poem about the sea", "What is two plus two?", "Name three colours", "Tell me a story"]
# What ``trained_adapter`` is over-fitted on: instruction -> exact response.
TRAINED_EXAMPLES = [("Say hello", "Hello there!"), ("Count to three", "one, two, three"),
                    ("Name a fruit", "An apple.")]
