"""Duration estimates come from measured throughput, never a constant."""

from __future__ import annotations

import pytest

from sienn_ray.train import estimate


def test_estimate_is_tokens_times_epochs_over_throughput():
    assert estimate.estimate_seconds(10_000, 3, 1_000, startup_s=5) == pytest.approx(35.0)
    assert estimate.estimate_seconds(10_000, 6, 1_000, startup_s=5) > estimate.estimate_seconds(10_000, 3, 1_000,
                                                                                               startup_s=5)
    with pytest.raises(ValueError):
        estimate.estimate_seconds(1, 1, 0)


def test_past_jobs_win_over_calibration(tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "_measure", lambda *a: pytest.fail("must not calibrate"))
    assert estimate.throughput("/nonexistent", [900.0, 1100.0, 5000.0], cache_file=tmp_path / "t.json") == 1100.0


def test_calibration_measures_once_then_reads_the_cache(embedded_models, tmp_path, monkeypatch):
    path = embedded_models["sienn-tiny-gpt2"]
    cache = tmp_path / "throughput.json"
    first = estimate.calibrate(path, cache_file=cache, steps=1, seq_len=32, batch_size=2)
    assert first > 0 and cache.exists()
    monkeypatch.setattr(estimate, "_measure", lambda *a: pytest.fail("must use the cache"))
    assert estimate.calibrate(path, cache_file=cache) == first
    assert estimate.throughput(path, [], num_workers=2, cache_file=cache) == pytest.approx(
        first * 2 * estimate.SCALING_EFFICIENCY)
