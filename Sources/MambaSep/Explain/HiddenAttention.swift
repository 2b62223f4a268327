// Mamba's hidden attention (Ali, Zimerman & Wolf, "The Hidden Attention of Mamba Models", 2024):
// a selective scan is an implicit attention. Per channel e, without the D skip and the gate,
//   forward:  y[t] = Σ_{s≤t} α[t,s]·x[s],  α[t,s] = Σ_m C[t,m]·(Π_{k=s+1..t} exp(Δ[k]·A[m]))·Δ[s]·B[s,m]
//   backward: y[t] = Σ_{s≥t} α[t,s]·x[s],  α[t,s] = Σ_m C[t,m]·(Π_{k=t..s−1} exp(Δ[k]·A[m]))·Δ[s]·B[s,m]
// (the backward scan runs from the last step to the first, so its decays are those of the steps
// between t and s on the other side). A fast kernel (8 channels per SIMD lane group) sums α over
// a range of channels from the operands the engine's scan reads; a plain-loop reference beside it
// evaluates the definition directly.
//
// Glossary (docs/MODEL.md): `L'` sequence length, `E` channels (Mamba inner width), `M` state
// size; `Eb` the channels of the 8-channel blocks that cover the chosen range.

import Foundation

// MARK: - Fast kernel

/// Reusable buffers for `hiddenAttention` (one per thread).
public final class AttentionScratch {
    let decay = ScratchBuffer()        // [L', M, Eb] exp(Δ·A) of the chosen channel blocks
    let state = ScratchBuffer()        // [M, Eb] one source step's Δ[s]·B[s], decayed step by step
    let weight = ScratchBuffer()       // [Eb] 1 on chosen channels, 0 on the rest of their blocks
    public init() {}
}

/// Adds `Σ_{e ∈ channelRange} α_e[t, s]` to `out[t·L' + s]` for one sequence's scan in one
/// direction: the forward direction fills `s ≤ t` (lower triangle and diagonal), the backward one
/// (`reverse`) `s ≥ t`; other entries are left alone. Callers divide by the channel count for a mean.
///
/// Reads Δ, B, C and A exactly as `selectiveScan` does (`op.x` and `op.d` are not used; `op.aT`
/// holds A·log2 e) and computes exp(Δ·A) with the scan's own `fastExp2Scan`. For each source step
/// s the state Δ[s]·B[s] is decayed step by step away from s and read out through C[t]; once every
/// element has decayed below 1e-20 of its start (or 1e-30, which also keeps floats out of the
/// slow subnormal range) the rest of that column is taken as 0. O(L'²·M·Eb).
@_optimize(speed)
public func hiddenAttention(_ op: ScanOperands, length t: Int, channels e: Int, states m: Int, reverse: Bool,
                            channelRange: Range<Int>, scratch: AttentionScratch,
                            accumulatingInto out: UnsafeMutablePointer<Float>) {
    precondition(e % 8 == 0, "hiddenAttention needs a channel count divisible by 8, got \(e)")
    precondition(channelRange.lowerBound >= 0 && channelRange.upperBound <= e, "channels \(channelRange) outside 0..<\(e)")
    guard t > 0, !channelRange.isEmpty, m > 0 else { return }
    let lo = channelRange.lowerBound & ~7
    let eb = ((channelRange.upperBound + 7) & ~7) - lo, nb = eb / 8
    let dA = scratch.decay.reserve(t * m * eb)            // [L', M, Eb]
    let h = scratch.state.reserve(m * eb)                 // [M, Eb]
    let w = scratch.weight.reserve(eb)                    // [Eb]
    for i in 0..<eb { w[i] = channelRange.contains(lo + i) ? 1 : 0 }
    for step in 0..<t {
        let dr = op.delta + step * op.ldDelta + lo
        for s in 0..<m {
            let ar = op.aT + s * e + lo, row = dA + (step * m + s) * eb
            for b in 0..<nb { row.setVec8(8 * b, fastExp2Scan(dr.vec8(8 * b) * ar.vec8(8 * b))) }
        }
    }
    for src in 0..<t {
        // The source's contribution Δ[s]·B[s] (0 on channels outside the range).
        let dr = op.delta + src * op.ldDelta + lo, bRow = op.bc + src * op.ldbc
        var start = Vec8(repeating: 0)
        for b in 0..<nb {
            let wd = w.vec8(8 * b) * dr.vec8(8 * b)
            for s in 0..<m {
                let v = wd * Vec8(repeating: bRow[s])
                h.setVec8(s * eb + 8 * b, v)
                start = vmax(start, vabs(v))
            }
        }
        let cutoff = max(start.max() * 1e-20, 1e-30)
        var tgt = src, taken = 0
        while tgt >= 0 && tgt < t {
            let cr = op.bc + tgt * op.ldbc + m                                         // C[t]
            var acc0 = Vec8(repeating: 0), acc1 = Vec8(repeating: 0)
            if tgt == src {
                for s in 0..<m {
                    let cv = Vec8(repeating: cr[s]), hs = h + s * eb
                    var b = 0
                    while b + 1 < nb {
                        acc0 = acc0.addingProduct(hs.vec8(8 * b), cv)
                        acc1 = acc1.addingProduct(hs.vec8(8 * b + 8), cv)
                        b += 2
                    }
                    if b < nb { acc0 = acc0.addingProduct(hs.vec8(8 * b), cv) }
                }
            } else {
                let decay = dA + tgt * m * eb
                for s in 0..<m {
                    let cv = Vec8(repeating: cr[s]), hs = h + s * eb, ds = decay + s * eb
                    var b = 0
                    while b + 1 < nb {
                        let h0 = hs.vec8(8 * b) * ds.vec8(8 * b)
                        let h1 = hs.vec8(8 * b + 8) * ds.vec8(8 * b + 8)
                        hs.setVec8(8 * b, h0)
                        hs.setVec8(8 * b + 8, h1)
                        acc0 = acc0.addingProduct(h0, cv)
                        acc1 = acc1.addingProduct(h1, cv)
                        b += 2
                    }
                    if b < nb {
                        let h0 = hs.vec8(8 * b) * ds.vec8(8 * b)
                        hs.setVec8(8 * b, h0)
                        acc0 = acc0.addingProduct(h0, cv)
                    }
                }
            }
            out[tgt * t + src] += (acc0 + acc1).sum()
            tgt += reverse ? -1 : 1
            taken += 1
            if taken & 7 == 0 {
                var big = Vec8(repeating: 0)
                for i in 0..<(m * nb) { big = vmax(big, vabs(h.vec8(8 * i))) }
                if big.max() < cutoff { break }
            }
        }
    }
}

// MARK: - Reference

/// Plain-loop hidden attention from the definition (Double, Foundation `exp`, no recurrence) for
/// tests: returns `α[e][t·L' + s]` for every channel, zero outside the direction's triangle.
///
/// Arrays are dense as in `selectiveScanReference`: `delta` `[L', E]`; `b`, `c` `[L', M]`; `a`
/// `[E, M]` (already −exp(A_log)). O(E·L'³·M).
public func hiddenAttentionReference(delta: [Float], a: [Float], b: [Float], c: [Float],
                                     length t: Int, channels e: Int, states m: Int, reverse: Bool) -> [[Double]] {
    var alpha = [[Double]](repeating: [Double](repeating: 0, count: t * t), count: e)
    for ch in 0..<e {
        for tt in 0..<t {
            let sources = reverse ? Array(tt..<t) : Array(0...tt)
            for s in sources {
                // Steps whose decay lies between s and t: (s, t] forward, [t, s) backward.
                let steps = reverse ? Array(tt..<s) : Array((s + 1)..<(tt + 1))
                var value = 0.0
                for st in 0..<m {
                    var exponent = 0.0
                    for k in steps { exponent += Double(delta[k * e + ch]) * Double(a[ch * m + st]) }
                    value += Double(c[tt * m + st]) * Foundation.exp(exponent) * Double(delta[s * e + ch]) * Double(b[s * m + st])
                }
                alpha[ch][tt * t + s] = value
            }
        }
    }
    return alpha
}
