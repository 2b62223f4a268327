"""separate.py end to end on a tiny model: names, rate, length, format, errors."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

import separate
from mambasep_ref.config import ModelConfig
from mambasep_ref.io import load_model, save_model
from mambasep_ref.audio import resample
from mambasep_ref.model import DPMamba


def tiny_model(tmp_path, speakers=2):
    cfg = ModelConfig.preset("xs", n_filters=8, num_blocks=1, chunk_size=10, d_state=2,
                             num_speakers=speakers)
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_model(DPMamba(cfg), path)
    return path


def test_separate_writes_sources_at_input_rate_and_length(tmp_path, capsys) -> None:
    model = tiny_model(tmp_path, speakers=3)
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((16001, 2))).astype(np.float32)
    sf.write(tmp_path / "mix one.wav", stereo, 16000, subtype="PCM_16")
    mono8 = (0.1 * rng.standard_normal(1234)).astype(np.float32)
    sf.write(tmp_path / "b.flac", mono8, 8000)
    out = tmp_path / "out"
    rc = separate.main(["--model", str(model), str(tmp_path / "mix one.wav"),
                        str(tmp_path / "b.flac"), "-o", str(out), "--threads", "1"])
    assert rc == 0
    for stem, rate, n in (("mix one", 16000, 16001), ("b", 8000, 1234)):
        for c in (1, 2, 3):
            info = sf.info(out / f"{stem}_s{c}.wav")
            assert (info.samplerate, info.frames, info.channels, info.subtype) == (rate, n, 1, "PCM_16")
    err = capsys.readouterr().err
    assert "forward" in err and "RTF" in err


def test_separate_output_matches_model_forward(tmp_path) -> None:
    model_path = tiny_model(tmp_path)
    x = (0.2 * np.sin(np.arange(4000) * 0.05)).astype(np.float32)
    sf.write(tmp_path / "m.wav", x, 8000, subtype="FLOAT")
    assert separate.main(["--model", str(model_path), str(tmp_path / "m.wav"), "-o",
                          str(tmp_path), "--no-warmup"]) == 0
    model = load_model(model_path)
    with torch.inference_mode():
        est = model(torch.from_numpy(x)[None])[0].numpy()
    got, _ = sf.read(tmp_path / "m_s1.wav", dtype="float32")
    expect = est[0] * (0.99 / max(1.0, np.abs(est[0]).max()) if np.abs(est[0]).max() > 1 else 1.0)
    assert np.abs(got - np.clip(expect, -1, 1)).max() < 1.0 / 32768 * 1.01


def test_separate_errors_are_clean(tmp_path, capsys) -> None:
    model = tiny_model(tmp_path)
    (tmp_path / "notaudio.wav").write_text("hello")
    rc = separate.main(["--model", str(model), str(tmp_path / "notaudio.wav"), "-o", str(tmp_path)])
    assert rc == 1 and "cannot read audio" in capsys.readouterr().err
    rc = separate.main(["--model", str(tmp_path / "nope.safetensors"), str(tmp_path / "x.wav")])
    assert rc == 1 and "error" in capsys.readouterr().err


def test_resample_round_trip_keeps_length_and_band() -> None:
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y = resample(resample(x, 16000, 8000), 8000, 16000)
    assert y.shape == x.shape and np.abs(y[200:-200] - x[200:-200]).max() < 1e-2
