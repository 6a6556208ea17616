"""What each checkpoint reports (train loss, eval loss, eval token accuracy), a separate eval dataset,
servable checkpoint adapters and the tokens trained (one process, no Ray)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from sienn_ray.data.demo import write_demo_jsonl
from sienn_ray.data.packing import collate
from sienn_ray.data.templates import PromptTemplate
from sienn_ray.data.tokenize import IGNORE_INDEX, TokenizedExample
from sienn_ray.train.evaluate import eval_pass
from sienn_ray.train.hooks import LocalHooks
from sienn_ray.train.loop import run_training
from sienn_ray.train.report import ProgressReporter
from train_fakes import FakeRegistry


class _Guesser(torch.nn.Module):
    """Scores the right next token highest at the positions listed in ``right`` (per row), else token 0."""

    def __init__(self, targets: torch.Tensor, right: set[tuple[int, int]], vocab: int = 8):
        super().__init__()
        logits = torch.zeros(*targets.shape, vocab)
        for (row, pos) in right:
            logits[row, pos, targets[row, pos]] = 5.0
        for row, pos in zip(*torch.nonzero(targets != IGNORE_INDEX, as_tuple=True)):
            if (int(row), int(pos)) not in right:
                logits[row, pos, 0 if targets[row, pos] != 0 else 1] = 5.0
        self.logits = logits

    def forward(self, **_inputs):
        return SimpleNamespace(logits=self.logits)


def test_token_accuracy_is_the_share_of_targets_whose_top_guess_is_right():
    examples = [TokenizedExample([1, 2, 3, 4], [IGNORE_INDEX, 2, 3, 4]), TokenizedExample([5, 6, 7], [5, 6, 7])]
    batch = collate(examples, 16, 0, packing=False)  # targets: row 0 -> 2, 3, 4 at 0-2; row 1 -> 6, 7 at 0-1
    model = _Guesser(batch.targets, right={(0, 1), (1, 0), (1, 1)})
    result = eval_pass(model, examples, batch_size=2, max_length=16, pad_id=0, packing=False, device="cpu",
                       reduce=lambda values: values)
    assert batch.num_targets == 5 and result.token_accuracy == pytest.approx(3 / 5) and result.loss > 0


def test_a_run_with_an_eval_dataset_reports_metrics_per_checkpoint_and_the_tokens_trained(make_spec, tmp_path):
    registry = FakeRegistry()
    eval_file = tmp_path / "eval.jsonl"
    write_demo_jsonl(eval_file)
    eval_file.write_text("".join(eval_file.read_text().splitlines(keepends=True)[:6]))
    spec = make_spec(rows=24, num_epochs=2, checkpoint_every_steps=3).model_copy(
        update={"eval_dataset_path": str(eval_file)})
    run_training(spec, LocalHooks(tmp_path / "ckpt", reporter=ProgressReporter(
        lambda: registry, spec.job_id, min_interval_s=0.0, poll=lambda ref: ref)))

    # The eval dataset is evaluated whole, and every training row trains (24 rows / batch 4, twice).
    updates = [args[1] for args in registry.args_of("report_progress")]
    assert updates[-1]["total_steps"] == 12
    epoch_ends = [d for t, d in registry.events() if t == "epoch_end"]
    assert all(d["eval_loss"] > 0 and 0 <= d["eval_token_accuracy"] <= 1 for d in epoch_ends)

    # Every checkpoint (step ones too) reports its metrics and holds an adapter that can be served as is.
    checkpoints = [d for t, d in registry.events() if t == "checkpoint"]
    assert [d["step"] for d in checkpoints] == [3, 6, 9, 12]
    for data in checkpoints:
        assert data["train_loss"] > 0 and data["eval_loss"] > 0 and 0 <= data["eval_token_accuracy"] <= 1
        adapter = Path(data["path"]) / "adapter"
        assert {"adapter_config.json", "adapter_model.safetensors", "template.json"} <= {
            p.name for p in adapter.iterdir()}
        assert PromptTemplate.load(adapter).kind == "alpaca"
    points = [args[1] for args in registry.args_of("add_loss_point") if args[1]["eval_loss"] is not None]
    assert points and all(0 <= p["eval_token_accuracy"] <= 1 for p in points)

    # The tokens trained: reported at each epoch's end and at the end, the same rows twice.
    counted = [u["trained_tokens"] for u in updates if "trained_tokens" in u]
    assert counted[0] > 0 and counted[-1] == 2 * counted[0]
