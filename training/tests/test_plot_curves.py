"""plot_curves.compare: two runs of one plan agree within noise, or one lies above the other."""

from __future__ import annotations

import json

import numpy as np
import pytest

import plot_curves


def _log(path, losses, val=()):
    with open(path, "w") as f:
        for i, loss in enumerate(losses):
            f.write(json.dumps({"event": "train", "step": 25 * (i + 1), "loss": float(loss), "wall": float(i)}) + "\n")
        for step, dev in val:
            f.write(json.dumps({"event": "val", "step": step, "dev_sisnri": dev}) + "\n")
    return path


def test_two_noisy_runs_of_one_trend_agree_and_a_shifted_one_differs(tmp_path):
    rng = np.random.default_rng(0)
    trend = -np.linspace(2.0, 10.0, 80)                       # a falling −SI-SNR
    a = plot_curves.read_logs("old", [_log(tmp_path / "a.jsonl", trend + 0.3 * rng.standard_normal(80),
                                           [(1000, 5.0), (2000, 7.0)])])
    b = plot_curves.read_logs("new", [_log(tmp_path / "b.jsonl", trend + 0.3 * rng.standard_normal(80),
                                           [(1000, 5.1), (2000, 6.9)])])
    c = plot_curves.read_logs("off", [_log(tmp_path / "c.jsonl", trend + 0.5 + 0.3 * rng.standard_normal(80))])
    same = plot_curves.compare(a, b)
    assert same["agree"] and same["steps"] == 80 and 0.3 < same["scatter"] < 0.5
    assert same["val"] == [(1000, 5.0, 5.1), (2000, 7.0, 6.9)]
    off = plot_curves.compare(a, c)
    assert not off["agree"] and 0.4 < off["mean_d"] < 0.6


def test_runs_without_common_steps_cannot_be_compared(tmp_path):
    a = plot_curves.read_logs("a", [_log(tmp_path / "a.jsonl", [1.0, 2.0])])
    b = plot_curves.read_logs("b", [_log(tmp_path / "b.jsonl", [1.0, 2.0, 3.0, 4.0])])
    with pytest.raises(ValueError, match="share 2 logged steps"):
        plot_curves.compare(a, b)
