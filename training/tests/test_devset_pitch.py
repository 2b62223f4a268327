"""devset_pitch.py: median F0 of a source and devset SI-SNRi by pitch pair."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import devset_pitch

SR = 8000


def voice(f0: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A buzzy vowel-like tone: harmonics of f0 with falling amplitude, a little noise, pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 12)
            if k * f0 < SR / 2)
    x = x * (np.sin(2 * np.pi * 2 * t) > -0.5)                # silent gaps, like pauses
    return 0.1 * x / np.abs(x).max() + 1e-3 * rng.standard_normal(len(t))


@pytest.mark.parametrize("f0", [95.0, 130.0, 210.0, 260.0])
def test_median_f0_finds_the_fundamental(f0: float) -> None:
    assert devset_pitch.median_f0(voice(f0), SR) == pytest.approx(f0, rel=0.03)


def test_noise_and_short_input_have_no_pitch() -> None:
    noise = np.random.default_rng(1).standard_normal(SR)
    assert np.isnan(devset_pitch.median_f0(noise, SR))
    assert np.isnan(devset_pitch.median_f0(voice(120.0)[:100], SR))


def make_devset(root: Path, f0s: dict[str, tuple[float, float]]) -> Path:
    for name, (a, b) in f0s.items():
        d = root / name
        d.mkdir(parents=True)
        s1, s2 = voice(a, seed=1), voice(b, seed=2)
        for fname, x in (("s1.wav", s1), ("s2.wav", s2), ("mix.wav", s1 + s2)):
            sf.write(d / fname, x, SR, subtype="FLOAT")
    return root


def test_pairs_and_means_per_pair(tmp_path, capsys) -> None:
    dev = make_devset(tmp_path / "dev", {"d000": (220, 250), "d001": (110, 230),
                                         "d002": (240, 100), "d003": (100, 130)})
    assert devset_pitch.pitch_pairs(dev) == {"d000": "FF", "d001": "FM", "d002": "FM", "d003": "MM"}
    items = [{"id": "d000", "si_snri": 2.0}, {"id": "d001", "si_snri": 8.0},
             {"id": "d002", "si_snri": 10.0}, {"id": "d003", "si_snri": 7.0}]
    pairs = devset_pitch.pitch_pairs(dev)
    assert devset_pitch.by_pair(items, pairs) == {"FF": (1, 2.0), "FM": (2, 9.0), "MM": (1, 7.0)}
    ev = tmp_path / "eval.json"
    ev.write_text(json.dumps({"items": items, "summary": {}}))
    assert devset_pitch.main(["--devset", str(dev), str(ev)]) == 0
    assert "FF 2.00 dB (1), FM 9.00 dB (2), MM 7.00 dB (1)" in capsys.readouterr().out


def test_bad_inputs_are_one_line_errors(tmp_path, capsys) -> None:
    dev = make_devset(tmp_path / "dev", {"d000": (220, 110)})
    ev = tmp_path / "eval.json"
    ev.write_text(json.dumps({"items": [{"id": "d999", "si_snri": 1.0}]}))
    assert devset_pitch.main(["--devset", str(dev), str(ev)]) == 1
    assert "d999" in capsys.readouterr().err
    assert devset_pitch.main(["--devset", str(tmp_path / "nowhere"), str(ev)]) == 1
    assert "nowhere" in capsys.readouterr().err
    sf.write(dev / "d000" / "s2.wav", np.zeros(SR), SR)       # a silent source has no pitch
    ev.write_text(json.dumps({"items": []}))
    assert devset_pitch.main(["--devset", str(dev), str(ev)]) == 1
    assert "d000: source s2" in capsys.readouterr().err
