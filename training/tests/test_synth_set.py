"""synth_set.py: the held-out validation set written as a LibriMix-style folder."""

from __future__ import annotations

import numpy as np
import soundfile as sf

import synth_set
from data import MixSampler
from support import make_corpus


def heldout_corpus():
    c = make_corpus(n_per=2)
    c.split[8:] = "heldout"          # speakers 4… (arctic:slt, espeak, piper) are held out
    return c


def test_written_set_is_train_pys_fixed_set(tmp_path) -> None:
    corpus = heldout_corpus()
    out = tmp_path / "synth"
    assert synth_set.write_set(corpus, out, n=5, seconds=1.0, seed=0) == 5
    mix, srcs = MixSampler(corpus, "heldout", seconds=1.0, seed=0).fixed_set(5)
    assert sorted(p.name for p in out.iterdir()) == ["mix_clean", "s1", "s2"]
    for i in range(5):
        m, sr = sf.read(out / "mix_clean" / f"y{i:03d}.wav", dtype="float32")
        assert sr == 8000 and np.array_equal(m, mix[i].numpy())
        s = [sf.read(out / f"s{c}" / f"y{i:03d}.wav", dtype="float32")[0] for c in (1, 2)]
        assert np.array_equal(s[0], srcs[i, 0].numpy()) and np.array_equal(s[1], srcs[i, 1].numpy())
        assert np.abs(m - (s[0] + s[1])).max() < 1e-6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".synth-")]


def test_bad_inputs_are_errors_and_nothing_is_overwritten(tmp_path, capsys) -> None:
    assert synth_set.main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 1
    assert "neither a packed corpus" in capsys.readouterr().err
    (tmp_path / "o" / "mix_clean").mkdir(parents=True)
    (tmp_path / "o" / "mix_clean" / "keep.wav").write_bytes(b"x")
    assert synth_set.main(["--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "o" / "mix_clean" / "keep.wav").read_bytes() == b"x"
    assert synth_set.main(["--data", str(tmp_path), "--out", str(tmp_path / "p"), "--n", "0"]) == 1


def test_engine_set_mixes_only_that_sources_speakers(tmp_path) -> None:
    corpus = make_corpus(n_per=2)                         # every utterance in the train split
    mine = synth_set.only_engine(corpus, "kokoro")
    assert corpus.split.tolist() == ["train"] * len(corpus.split)      # the input is not changed
    picked = {s for s, p in zip(mine.speakers, mine.split) if p == "heldout"}
    assert picked == {s for s in corpus.speakers if s.startswith("kokoro:")} and len(picked) == 4
    mix, srcs = MixSampler(mine, "heldout", seconds=1.0, seed=0).fixed_set(4)
    assert synth_set.write_set(mine, tmp_path / "e", n=4, seconds=1.0, seed=0) == 4
    m, _ = sf.read(tmp_path / "e" / "mix_clean" / "y000.wav", dtype="float32")
    assert np.array_equal(m, mix[0].numpy())
    assert synth_set.main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
                           "--engine", "kokoro"]) == 1
