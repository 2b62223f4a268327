"""SI-SNR golden value, PIT on permuted copies, loss sign."""

from __future__ import annotations

import itertools

import torch

from mambasep_ref.losses import pit_loss, pit_si_snr, si_snr


def test_si_snr_known_value() -> None:
    v = si_snr(torch.tensor([2.5, 0.0, 2.0, 8.0]), torch.tensor([3.0, -0.5, 2.0, 7.0]))
    assert abs(v.item() - 15.0918) < 1e-3


def test_si_snr_scale_and_offset_invariant() -> None:
    torch.manual_seed(0)
    s, n = torch.randn(1000), torch.randn(1000)
    a = si_snr(s + 0.3 * n, s)
    assert torch.allclose(si_snr(4.0 * (s + 0.3 * n) + 2.0, s), a, atol=1e-4)


def test_pit_on_permuted_copy_recovers_permutation() -> None:
    torch.manual_seed(0)
    for c in (2, 3, 4):
        ref = torch.randn(len(list(itertools.permutations(range(c)))), c, 800)
        perms = torch.tensor(list(itertools.permutations(range(c))))
        est = torch.empty_like(ref)
        for b in range(ref.shape[0]):             # est[b, perm[j]] = ref[b, j] (+ small noise)
            est[b, perms[b]] = ref[b] + 1e-3 * torch.randn(c, 800)
        best, perm = pit_si_snr(est, ref)
        assert torch.equal(perm, perms)
        ident = si_snr(torch.stack([est[b, perms[b]] for b in range(len(perms))]), ref).mean(-1)
        assert torch.allclose(best, ident)
        assert torch.all(best > 55)               # ≈ 60 dB for 1e-3 noise on unit signals
        assert torch.allclose(pit_loss(est, ref), -best.mean())


def test_pit_loss_exact_copy_is_very_negative() -> None:
    ref = torch.randn(2, 2, 500)
    assert pit_loss(ref.flip(1), ref) < -70
