"""Dynamic mixing: speaker rule, pair sampling, crop lengths, relative gains, determinism."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import (COLOUR_GRID, Augment, Corpus, MixSampler, SpeakerRule, colour_curve_db,  # noqa: E402
                  filter_sources, kokoro_families, room_response)
from validate import si_snr  # noqa: E402

SPEAKERS = ["kokoro:af_bella", "kokoro:af_bella+bm_george", "kokoro:bm_george+am_liam",
            "kokoro:am_adam", "arctic:slt", "arctic:slt", "espeak:en-us+f1:p50", "piper:joe"]


def make_corpus(seed: int = 0, n_per: int = 3) -> Corpus:
    """Tones per speaker (distinct f0), 0.3–6 s long, int16."""
    rng = np.random.default_rng(seed)
    chunks, start, length, spk, split = [], [], [], [], []
    pos = 0
    for s_i, s in enumerate(SPEAKERS):
        for _ in range(n_per):
            n = int(rng.uniform(0.3, 6.0) * 8000)
            t = np.arange(n) / 8000
            x = 0.5 * np.sin(2 * np.pi * (100 + 40 * s_i) * t) * rng.uniform(0.2, 1.0)
            chunks.append(np.round(x * 32767).astype(np.int16))
            start.append(pos)
            length.append(n)
            spk.append(s)
            split.append("train")
            pos += n
    return Corpus(torch.from_numpy(np.concatenate(chunks)), np.array(start), np.array(length),
                  spk, np.array(split, dtype="<U8"), [f"u{i}" for i in range(len(spk))])


def test_kokoro_families_strip_v0():
    assert kokoro_families("kokoro:af_v0bella+bm_george") == {"af_bella", "bm_george"}
    assert kokoro_families("arctic:slt") is None


def test_speaker_rule():
    r = SpeakerRule(SPEAKERS)
    ok = lambda a, b: bool(r.compatible(np.array([a]), np.array([b]))[0])  # noqa: E731
    assert not ok(0, 1)          # share af_bella
    assert not ok(1, 2)          # share bm_george
    assert ok(0, 2)              # disjoint families
    assert ok(0, 3)
    assert not ok(4, 5)          # same ARCTIC voice in festival and flite
    assert not ok(6, 6)
    assert ok(4, 6) and ok(0, 7)


def test_pairs_respect_rule_and_shapes():
    c = make_corpus()
    s = MixSampler(c, seconds=1.0, seed=3)
    rule = SpeakerRule(c.speakers)
    rng = np.random.default_rng(0)
    p = s.plan(rng, 256)
    assert rule.compatible(p.utt[:, 0], p.utt[:, 1]).all()
    assert (p.speed >= 0.95).all() and (p.speed <= 1.05).all()
    p.utt, p.speed, p.pos0, p.rel_db, p.level_db = p.utt[:48], p.speed[:48], p.pos0[:48], p.rel_db[:48], p.level_db[:48]
    mix, src = s.render(p)
    assert mix.shape == (48, 8000) and src.shape == (48, 2, 8000)
    torch.testing.assert_close(mix, src.sum(1))
    assert src.abs().max() <= 0.9 + 1e-5 and mix.abs().max() <= 0.9 + 1e-5


def test_relative_gain_between_0_and_5_db():
    c = make_corpus()
    s = MixSampler(c, seconds=1.0, seed=1, speed=(1.0, 1.0))
    p = s.plan(np.random.default_rng(5), 64)
    mix, src = s.render(p)
    # RMS over each source's active samples: the level difference equals the planned gap.
    act = src.abs() > 0
    rms = ((src ** 2).sum(-1) / act.sum(-1)).sqrt()
    diff = 20 * torch.log10(rms[:, 0] / rms[:, 1])
    planned = torch.tensor(p.rel_db[:, 0] - p.rel_db[:, 1], dtype=torch.float32)
    assert torch.allclose(diff, planned, atol=0.05)
    assert (planned.abs() <= 5.0 + 1e-6).all()


def test_speed_one_reproduces_samples_exactly():
    c = make_corpus()
    s = MixSampler(c, seconds=0.5, seed=0)
    p = s.plan(np.random.default_rng(2), 8)
    p.speed[:] = 1.0
    p.pos0 = np.floor(p.pos0)
    _, src = s.render(p)
    # Undo the gains: each rendered source must be a scaled copy of the stored samples.
    for b in range(8):
        u, p0 = p.utt[b, 0], int(p.pos0[b, 0])
        ref = torch.zeros(4000)
        a0, a1 = max(0, p0), min(int(c.length[u]), p0 + 4000)
        ref[a0 - p0:a1 - p0] = c.audio[c.start[u] + a0:c.start[u] + a1].float()
        assert si_snr(src[b, 0].double(), ref.double()) > 80


def test_short_utterances_are_padded_and_long_ones_cropped():
    c = make_corpus()
    s = MixSampler(c, seconds=4.0, seed=0, speed=(1.0, 1.0))
    p = s.plan(np.random.default_rng(9), 24)
    _, src = s.render(p)
    active = (src.abs() > 0).sum(-1)                                         # [B, C]
    n = torch.tensor(c.length[p.utt])
    expect = torch.minimum(n, torch.tensor(32000))
    assert ((active - expect).abs() <= 16 + expect // 50).all()  # zero crossings may land on 0


def test_batches_are_deterministic_per_step_and_rank():
    c = make_corpus()
    s = MixSampler(c, seconds=0.5, seed=7)
    a, _ = s.batch(10, 0, 4)
    b, _ = s.batch(10, 0, 4)
    d, _ = s.batch(10, 1, 4)
    e, _ = s.batch(11, 0, 4)
    assert torch.equal(a, b)
    assert not torch.equal(a, d) and not torch.equal(a, e)


def test_split_without_mixable_pair_is_an_error():
    c = make_corpus()
    c.split[:] = "train"
    c.split[12:18] = "heldout"        # arctic:slt (both engines) only: one speaker
    with pytest.raises(ValueError, match="no pair"):
        MixSampler(c, "heldout")
    with pytest.raises(ValueError, match="has 0 utterances"):
        MixSampler(c, "nope")


# MARK: - Augmentation


def test_augmentation_off_leaves_batches_unchanged():
    c = make_corpus()
    a = MixSampler(c, seed=3).batch(5, 0, 4)
    b = MixSampler(c, seed=3, augment=Augment(colour=0.0, room=0.0)).batch(5, 0, 4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_augmented_batches_are_deterministic_and_still_sum_to_the_mixture():
    c = make_corpus()
    aug = Augment(colour=1.0, room=1.0)
    m1, s1 = MixSampler(c, seed=3, augment=aug).batch(7, 1, 6)
    m2, s2 = MixSampler(c, seed=3, augment=aug).batch(7, 1, 6)
    assert torch.equal(m1, m2) and torch.equal(s1, s2)
    assert torch.allclose(m1, s1.sum(1), atol=1e-6)
    assert float(torch.maximum(m1.abs().amax(), s1.abs().amax())) <= 0.9 + 1e-5
    plain = MixSampler(c, seed=3).batch(7, 1, 6)[1]
    # Same utterances and crops, but the sources now differ (coloured and reverberant).
    assert float(si_snr(s1.double(), plain.double()).mean()) < 25.0


def test_neutral_filters_are_the_identity():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(2, 2, 1000, generator=g)
    room = np.zeros((2, 2, 50))
    room[..., 0] = 1.0
    out = filter_sources(src, np.zeros((2, 2, COLOUR_GRID)), room)
    assert torch.allclose(out, src, atol=1e-5)


def test_room_response_decay_and_direct_to_reverberant_ratio():
    rng = np.random.default_rng(0)
    r = room_response(rng, 200, 8000, (0.4, 0.4), (6.0, 6.0))
    assert np.all(r[:, 0] == 1.0)
    tail = r[:, 1:]
    drr = 10 * np.log10(1.0 / (tail ** 2).sum(-1))
    assert np.allclose(drr, 6.0, atol=1e-6)
    # Schroeder backward integration: −5 → −35 dB slope extrapolated to 60 dB ≈ RT60 = 0.4 s.
    e = (tail ** 2).mean(0)[::-1].cumsum()[::-1]
    edc = 10 * np.log10(e / e[0])
    i5, i35 = np.argmax(edc < -5), np.argmax(edc < -35)
    rt = (i35 - i5) / 8000 * 2
    assert abs(rt - 0.4) < 0.04, rt


def test_colour_curve_shapes_the_spectrum():
    rng = np.random.default_rng(1)
    curve = colour_curve_db(rng, 1)                              # [1, G]
    noise = torch.randn(1, 1, 2 ** 16, generator=torch.Generator().manual_seed(2))
    out = filter_sources(noise, curve[None], None)
    spec_in = torch.fft.rfft(noise.double()).abs().pow(2)
    spec_out = torch.fft.rfft(out.double()).abs().pow(2)
    f = np.linspace(0, 4000, COLOUR_GRID)
    bins = np.linspace(0, 4000, spec_in.shape[-1])
    for k in range(1, COLOUR_GRID - 1):                          # measured gain near each grid point
        near = torch.from_numpy(np.abs(bins - f[k]) < 40)
        gain = 10 * torch.log10(spec_out[..., near].sum() / spec_in[..., near].sum())
        assert abs(float(gain) - curve[0, k]) < 1.0, (k, float(gain), curve[0, k])


def test_augment_probabilities_are_checked():
    with pytest.raises(ValueError, match="colour"):
        Augment(colour=1.5)
