"""sienn-ray: LoRA fine-tuning of causal language models on Ray (datasets, training, serving, export)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sienn-ray")  # pyproject.toml's version, as installed
except PackageNotFoundError:  # a source tree imported without being installed
    __version__ = "0+unknown"
