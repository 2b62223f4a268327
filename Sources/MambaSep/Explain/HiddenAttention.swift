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
    let decay = ScratchBuffer()        // [Eb/8, L', M, 8] exp(Δ·A) of the chosen channel blocks
    let state = ScratchBuffer()        // [M, 8] one block's Δ[s]·B[s] (the general path)
    let column = ScratchBuffer()       // [L', 8] one source step's α, lane-wise over channel blocks
    public init() {}
}

/// Adds `Σ_{e ∈ channelRange} α_e[t, s]` to `out[t·L' + s]` for one sequence's scan in one
/// direction: the forward direction fills `s ≤ t` (lower triangle and diagonal), the backward one
/// (`reverse`) `s ≥ t`; other entries are left alone. Callers divide by the channel count for a mean.
///
/// Reads Δ, B, C and A exactly as `selectiveScan` does (`op.x` and `op.d` are not used; `op.aT`
/// holds A·log2 e) and computes exp(Δ·A) with the scan's own `fastExp2Scan`. For each source step
/// s and block of 8 channels, the state Δ[s]·B[s] (8 states at a time in registers) is decayed
/// step by step away from s and read out through C[t]; once all of it has decayed below 1e-20 of
/// its start (or 1e-30, which also keeps floats out of the slow subnormal range) the rest of that
/// column is taken as 0. O(L'²·M·Eb).
@_optimize(speed)
public func hiddenAttention(_ op: ScanOperands, length t: Int, channels e: Int, states m: Int, reverse: Bool,
                            channelRange: Range<Int>, scratch: AttentionScratch,
                            accumulatingInto out: UnsafeMutablePointer<Float>) {
    precondition(e % 8 == 0, "hiddenAttention needs a channel count divisible by 8, got \(e)")
    precondition(channelRange.lowerBound >= 0 && channelRange.upperBound <= e, "channels \(channelRange) outside 0..<\(e)")
    guard t > 0, !channelRange.isEmpty, m > 0 else { return }
    let lo = channelRange.lowerBound & ~7
    let nb = (((channelRange.upperBound + 7) & ~7) - lo) / 8
    let dA = scratch.decay.reserve(nb * t * m * 8)        // [Eb/8, L', M, 8]
    let col = scratch.column.reserve(t * 8)               // [L', 8]
    let hm = scratch.state.reserve(m * 8)                 // [M, 8]
    for b in 0..<nb {
        for step in 0..<t {
            let dv = (op.delta + step * op.ldDelta + lo).vec8(8 * b)
            let row = dA + (b * t + step) * m * 8
            for s in 0..<m { row.setVec8(8 * s, fastExp2Scan(dv * (op.aT + s * e + lo).vec8(8 * b))) }
        }
    }
    let step = reverse ? -1 : 1
    let m8 = m & ~7
    for src in 0..<t {
        let span = reverse ? src + 1 : t - src              // steps from src to the end, src included
        col.update(repeating: 0, count: t * 8)
        let bRow = op.bc + src * op.ldbc
        for b in 0..<nb {
            // Δ[s] on the block's chosen channels, 0 on the others.
            var wd = (op.delta + src * op.ldDelta + lo).vec8(8 * b)
            for lane in 0..<8 where !channelRange.contains(lo + 8 * b + lane) { wd[lane] = 0 }
            let blockDecay = dA + b * t * m * 8
            // 8 states at a time in registers.
            var s0 = 0
            while s0 < m8 {
                var h0 = wd * Vec8(repeating: bRow[s0]), h1 = wd * Vec8(repeating: bRow[s0 + 1])
                var h2 = wd * Vec8(repeating: bRow[s0 + 2]), h3 = wd * Vec8(repeating: bRow[s0 + 3])
                var h4 = wd * Vec8(repeating: bRow[s0 + 4]), h5 = wd * Vec8(repeating: bRow[s0 + 5])
                var h6 = wd * Vec8(repeating: bRow[s0 + 6]), h7 = wd * Vec8(repeating: bRow[s0 + 7])
                let big = vmax(vmax(vmax(vabs(h0), vabs(h1)), vmax(vabs(h2), vabs(h3))),
                               vmax(vmax(vabs(h4), vabs(h5)), vmax(vabs(h6), vabs(h7))))
                let cutoff = max(hmax(big) * 1e-20, 1e-30)
                var tgt = src
                for k in 0..<span {
                    if k > 0 {
                        let d = blockDecay + (tgt * m + s0) * 8
                        h0 *= d.vec8(0); h1 *= d.vec8(8); h2 *= d.vec8(16); h3 *= d.vec8(24)
                        h4 *= d.vec8(32); h5 *= d.vec8(40); h6 *= d.vec8(48); h7 *= d.vec8(56)
                    }
                    let c = op.bc + tgt * op.ldbc + m + s0
                    var a0 = h0 * Vec8(repeating: c[0])
                    var a1 = h1 * Vec8(repeating: c[1])
                    a0 = a0.addingProduct(h2, Vec8(repeating: c[2]))
                    a1 = a1.addingProduct(h3, Vec8(repeating: c[3]))
                    a0 = a0.addingProduct(h4, Vec8(repeating: c[4]))
                    a1 = a1.addingProduct(h5, Vec8(repeating: c[5]))
                    a0 = a0.addingProduct(h6, Vec8(repeating: c[6]))
                    a1 = a1.addingProduct(h7, Vec8(repeating: c[7]))
                    col.setVec8(8 * tgt, col.vec8(8 * tgt) + a0 + a1)
                    if k & 7 == 7 {
                        let left = vmax(vmax(vmax(vabs(h0), vabs(h1)), vmax(vabs(h2), vabs(h3))),
                                        vmax(vmax(vabs(h4), vabs(h5)), vmax(vabs(h6), vabs(h7))))
                        if hmax(left) < cutoff { break }
                    }
                    tgt += step
                }
                s0 += 8
            }
            // The remaining states (M not a multiple of 8), one at a time through memory.
            if s0 < m {
                var big = Vec8(repeating: 0)
                for s in s0..<m {
                    let v = wd * Vec8(repeating: bRow[s])
                    hm.setVec8(8 * s, v)
                    big = vmax(big, vabs(v))
                }
                let cutoff = max(hmax(big) * 1e-20, 1e-30)
                var tgt = src
                for k in 0..<span {
                    let c = op.bc + tgt * op.ldbc + m
                    var acc = Vec8(repeating: 0), left = Vec8(repeating: 0)
                    for s in s0..<m {
                        var hv = hm.vec8(8 * s)
                        if k > 0 { hv *= (blockDecay + (tgt * m + s) * 8).vec8(0) }
                        hm.setVec8(8 * s, hv)
                        acc = acc.addingProduct(hv, Vec8(repeating: c[s]))
                        left = vmax(left, vabs(hv))
                    }
                    col.setVec8(8 * tgt, col.vec8(8 * tgt) + acc)
                    if hmax(left) < cutoff { break }
                    tgt += step
                }
            }
        }
        var tgt = src
        for _ in 0..<span {
            out[tgt * t + src] += col.vec8(8 * tgt).sum()
            tgt += step
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
