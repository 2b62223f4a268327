"""Dynamic mixing: speaker rule, pair sampling, crop lengths, relative gains, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from data import (COLOUR_GRID, Augment, Corpus, MixPlan, MixSampler, PseudoSpeakers,
                  SpeakerRule, colour_curve_db, filter_sources, kokoro_families, person_of,
                  pseudo_label, room_response, warp_formants)
from sources import REAL_SOURCES
from support import SPEAKERS, make_corpus
from validate import si_snr


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


# MARK: - Pseudo-speakers

HUMANS = ["kde:fr", "kde:de", "asterisk:june", "fillets:cs-m"]


def test_pseudo_labels_and_rule():
    assert pseudo_label("kde:fr", 0) == "kde:fr" and pseudo_label("kde:fr", 2) == "kde:fr#2"
    assert person_of("kde:fr#2") == "kde:fr" and person_of("kde:fr") == "kde:fr"
    assert person_of("espeak:en-us+f1:p50") == "espeak:en-us+f1:p50"
    r = SpeakerRule(["kde:fr", "kde:fr#1", "kde:fr#2", "kde:de#1", "kokoro:af_bella"])
    ok = lambda a, b: bool(r.compatible(np.array([a]), np.array([b]))[0])  # noqa: E731
    assert not ok(0, 1) and not ok(1, 2) and not ok(2, 0)    # one person, any two of their voices
    assert ok(0, 3) and ok(1, 3) and ok(3, 4)


def test_pseudo_voices_in_range_apart_and_deterministic():
    ps = PseudoSpeakers(k=4, pitch=(-3.0, 3.0), formant=(0.88, 1.14))
    v = ps.voices("kde:fr", 0)                                               # [K + 1, 2]
    assert v.shape == (5, 2) and np.array_equal(v[0], [1.0, 1.0])
    st, fm = 12 * np.log2(v[1:, 0]), v[1:, 1]
    assert (np.abs(st) <= 3.0 + 1e-9).all() and (fm >= 0.88 - 1e-9).all() and (fm <= 1.14 + 1e-9).all()
    u = np.stack([12 * np.log2(v[:, 0]) / 2.0, np.log(v[:, 1]) / math.log(1.06)], 1)
    d = np.hypot(*(u[:, None] - u[None]).transpose(2, 0, 1))
    assert d[~np.eye(5, dtype=bool)].min() >= 1.0                             # ≥ 1 unit apart
    assert np.array_equal(v, ps.voices("kde:fr", 0))
    assert not np.array_equal(v, ps.voices("kde:de", 0)) and not np.array_equal(v, ps.voices("kde:fr", 1))
    with pytest.raises(ValueError, match="pitch"):
        PseudoSpeakers(k=2, pitch=(-13.0, 0.0))
    with pytest.raises(ValueError, match="formant"):
        PseudoSpeakers(k=2, formant=(1.2, 1.1))


def human_corpus(seed: int = 0) -> Corpus:
    """make_corpus with four of its speakers renamed to human sources (the others stay TTS)."""
    c = make_corpus(seed)
    names = dict(zip(["arctic:slt", "espeak:en-us+f1:p50", "piper:joe", "kokoro:am_adam"], HUMANS))
    c.speakers = [names.get(s, s) for s in c.speakers]
    return c


def test_pseudo_speakers_only_for_human_speech_and_never_with_themselves():
    c = human_corpus()
    s = MixSampler(c, seconds=0.5, seed=3, pseudo=PseudoSpeakers(k=3))
    p = s.plan(np.random.default_rng(0), 2000)
    labels = s.labels(p)                                                     # [B, C]
    human = np.vectorize(lambda x: x.split(":")[0] in REAL_SOURCES)(labels)
    pseudo = np.vectorize(lambda x: "#" in x)(labels)
    assert not (pseudo & ~human).any()                                       # TTS voices stay as they are
    assert set(p.variant[human]) == {0, 1, 2, 3}                             # the person and all 3 pseudo
    persons = np.vectorize(person_of)(labels)
    assert (persons[:, 0] != persons[:, 1]).all()
    # Each pseudo-speaker has one voice throughout: its (pitch, formant) depend on the label only.
    seen: dict[str, tuple] = {}
    for lab, pi, fo in zip(labels.ravel(), p.pitch.ravel(), p.formant.ravel()):
        assert seen.setdefault(lab, (pi, fo)) == (pi, fo)
    assert all(v == (1.0, 1.0) for k, v in seen.items() if "#" not in k)
    assert len({k for k in seen if "#" in k}) == 3 * len(HUMANS)


def test_pseudo_off_leaves_batches_unchanged_and_on_is_deterministic():
    c = human_corpus()
    a = MixSampler(c, seed=3).batch(5, 0, 6)
    b = MixSampler(c, seed=3, pseudo=PseudoSpeakers(k=0)).batch(5, 0, 6)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    s1 = MixSampler(c, seconds=1.0, seed=3, pseudo=PseudoSpeakers(k=3))
    s2 = MixSampler(c, seconds=1.0, seed=3, pseudo=PseudoSpeakers(k=3))
    m1, x1 = s1.batch(7, 1, 6)
    m2, x2 = s2.batch(7, 1, 6)
    assert torch.equal(m1, m2) and torch.equal(x1, x2)
    assert not torch.equal(m1, s1.batch(8, 1, 6)[0]) and not torch.equal(m1, s1.batch(7, 0, 6)[0])


def test_pseudo_output_length_and_level():
    c = human_corpus()
    s = MixSampler(c, seconds=4.0, seed=1, speed=(1.0, 1.0), pseudo=PseudoSpeakers(k=3))
    p = s.plan(np.random.default_rng(5), 32)
    mix, src = s.render(p)
    assert mix.shape == (32, 32000) and src.shape == (32, 2, 32000)
    assert torch.allclose(mix, src.sum(1), atol=1e-6)
    # Length: a short utterance read at speed · pitch lasts length / pitch samples.
    active = (src.abs() > 0).sum(-1)
    expect = torch.minimum(torch.tensor(c.length[p.utt] / p.pitch), torch.tensor(32000.0))
    assert ((active - expect).abs() <= 16 + expect / 50).all()
    # Level: the planned gap between the sources, and the mixture level where no peak limits it.
    rms = ((src ** 2).sum(-1) / active.clamp(min=1)).sqrt()
    diff = 20 * torch.log10(rms[:, 0] / rms[:, 1])
    assert torch.allclose(diff, torch.tensor(p.rel_db[:, 0] - p.rel_db[:, 1], dtype=torch.float32), atol=0.05)
    level = 20 * torch.log10(mix.pow(2).mean(-1).sqrt())
    free = torch.maximum(mix.abs().amax(-1), src.abs().amax((-1, -2))) < 0.9 - 1e-4
    assert free.sum() >= 8
    assert torch.allclose(level[free], torch.tensor(p.level_db, dtype=torch.float32)[free], atol=0.01)


# A synthetic vowel: a pulse train through a glottal tilt and four formant resonators.
FORMANTS = ((700, 80), (1220, 90), (2600, 120), (3300, 150))


def vowel(f0: float, seconds: float, sr: int = 8000) -> np.ndarray:
    x = np.zeros(int(seconds * sr))
    for t in np.arange(0, len(x) - 1, sr / f0):            # pulses at exact fractional positions
        i = int(t)
        x[i] += 1 - (t - i)
        x[i + 1] += t - i
    x = lfilter([1], [1, -0.95], x)
    for fc, bw in FORMANTS:
        r, th = math.exp(-math.pi * bw / sr), 2 * math.pi * fc / sr
        x = lfilter([1 - r], [1, -2 * r * math.cos(th), r * r], x)
    return x / np.abs(x).max() * 0.5


def vowel_envelope_db(f: np.ndarray, sr: int = 8000) -> np.ndarray:
    """The vowel filter's response (dB) at frequencies f."""
    z = np.exp(-2j * np.pi * f / sr)
    h = 1 / (1 - 0.95 * z)
    for fc, bw in FORMANTS:
        r, th = math.exp(-math.pi * bw / sr), 2 * math.pi * fc / sr
        h = h * (1 - r) / (1 - 2 * r * math.cos(th) * z + r * r * z * z)
    return 20 * np.log10(np.abs(h))


def f0_autocorrelation(y: np.ndarray, sr: int = 8000) -> float:
    """F0 (Hz) of a steady voiced signal: autocorrelation peak between 60 and 400 Hz, refined
    by a parabola through the peak and its neighbours (sub-sample lag)."""
    y = y - y.mean()
    ac = np.fft.irfft(np.abs(np.fft.rfft(y, 2 * len(y))) ** 2)[:len(y)]
    lo, hi = int(sr / 400), int(sr / 60)
    k = lo + int(np.argmax(ac[lo:hi]))
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    return sr / (k + 0.5 * (a - c) / (a - 2 * b + c))


def harmonic_levels_db(y: np.ndarray, f0: float, sr: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and levels (dB) of the harmonics of a steady signal between 300 and 3000 Hz."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    f = np.fft.rfftfreq(len(y), 1 / sr)
    fk = f0 * np.arange(1, int(3000 / f0) + 1)
    fk = fk[fk > 300]
    lev = np.array([20 * np.log10(spec[np.abs(f - h) < 0.3 * f0].max()) for h in fk])
    return fk, lev


def render_voice(x: np.ndarray, pitch: float, formant: float, seconds: float = 1.0) -> np.ndarray:
    """x voiced as the pseudo-speaker (pitch, formant), rendered by MixSampler (speed 1)."""
    other = vowel(150.0, 2.0)
    audio = np.round(np.concatenate([x, other]) * 32767).astype(np.int16)
    c = Corpus(torch.from_numpy(audio), np.array([0, len(x)]), np.array([len(x), len(other)]),
               ["kde:a", "kde:b"], np.array(["train", "train"]), ["a", "b"])
    s = MixSampler(c, seconds=seconds, seed=0, speed=(1.0, 1.0), pseudo=PseudoSpeakers(k=1))
    one = np.ones((1, 2))
    p = MixPlan(utt=np.array([[0, 1]]), speed=one, pos0=np.zeros((1, 2)), rel_db=np.zeros((1, 2)),
                level_db=np.array([-20.0]), variant=np.array([[1, 0]]),
                pitch=np.array([[pitch, 1.0]]), formant=np.array([[formant, 1.0]]))
    return s.render(p)[1][0, 0].double().numpy()


@pytest.mark.parametrize("f0", [120.0, 210.0])
@pytest.mark.parametrize("semitones,formant", [(3.0, 1.0), (-3.0, 1.0), (0.0, 1.12), (0.0, 0.89),
                                               (3.0, 0.89), (-3.0, 1.12)])
def test_pseudo_speaker_pitch_and_formants_are_what_was_asked(f0, semitones, formant):
    """Pitch within 0.5 % (0.09 semitone) of the asked shift; harmonic levels within 3.5 dB RMS
    of the vowel's filter scaled by the formant factor (doing nothing: 6–10 dB off)."""
    x = vowel(f0, 1.5)
    pitch = 2 ** (semitones / 12)
    y = render_voice(x, pitch, formant)[1000:-1000]          # steady part (no STFT edge frames)
    assert abs(f0_autocorrelation(y) / (f0 * pitch) - 1) < 0.005
    fk, lev = harmonic_levels_db(y, f0 * pitch)
    err = lev - vowel_envelope_db(fk / formant)
    rms = float(np.sqrt(((err - err.mean()) ** 2).mean()))
    assert rms < 3.5, rms
    plain = render_voice(x, pitch, pitch)[1000:-1000]       # resampling only: formants follow pitch
    fk, lev = harmonic_levels_db(plain, f0 * pitch)
    err = lev - vowel_envelope_db(fk / formant)
    if abs(pitch / formant - 1) > 0.1:
        assert float(np.sqrt(((err - err.mean()) ** 2).mean())) > rms + 2.0


def test_warp_with_ratio_one_is_the_identity():
    x = torch.from_numpy(vowel(130.0, 0.5)).float()[None]
    torch.testing.assert_close(warp_formants(x, torch.ones(1)), x, atol=1e-5, rtol=0)


def test_pseudo_check_measures_the_envelope_scale_it_is_given():
    import pseudo_check

    f = np.arange(129) * 8000 / 256
    e0 = 20 * np.exp(-((f - 500) / 150) ** 2) + 12 * np.exp(-((f - 1500) / 200) ** 2) + 8 * np.exp(-((f - 2500) / 250) ** 2)
    for b in (0.88, 1.0, 1.14):
        assert abs(pseudo_check.envelope_scale(e0, np.interp(f / b, f, e0) - 3.0) - b) < 0.005
