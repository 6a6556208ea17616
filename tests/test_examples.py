"""The shipped example files agree with the code they document."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from sienn_ray.data.demo import DEMO_TRAINING_CONFIG, demo_records
from sienn_ray.schemas.jobs import TrainingConfig

ROOT = Path(__file__).resolve().parent.parent


def test_demo_yaml_is_the_demo_config_and_valid():
    config = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text())["config"]
    assert config == DEMO_TRAINING_CONFIG
    TrainingConfig.model_validate(config)


def test_demo_module_prints_the_dataset():
    out = subprocess.run([sys.executable, "-m", "sienn_ray.data.demo"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert len(out.splitlines()) == len(demo_records()) == 30


def test_facts_yaml_is_the_walkthrough_config_and_valid():
    from sienn_ray.data.demo import FACTS_TRAINING_CONFIG, facts_records

    config = yaml.safe_load((ROOT / "examples" / "facts.yaml").read_text())["config"]
    assert config == FACTS_TRAINING_CONFIG
    TrainingConfig.model_validate(config)
    out = subprocess.run([sys.executable, "-m", "sienn_ray.data.demo", "--facts"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert len(out.splitlines()) == len(facts_records()) == 10
