// Random operands of one sequence's selective scan, and runners for the kernels that read them.

import Foundation
@testable import MambaSep

/// Random operands of one sequence's selective scan, dense as the reference kernels take them:
/// `x`, `delta` `[L', E]`; `b`, `c` `[L', M]`; `a` `[E, M]` (already −exp(A_log)); `d` `[E]`.
struct RandomScan {
    var t: Int, e: Int, m: Int
    var x: [Float], delta: [Float], a: [Float], b: [Float], c: [Float], d: [Float]

    init(t: Int, e: Int, m: Int, seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        self.t = t; self.e = e; self.m = m
        x = rng.floats(t * e, -2, 2)
        delta = rng.floats(t * e, 0.001, 0.5)
        a = (0..<(e * m)).map { i in -Float(i % m + 1) * Float.random(in: 0.5..<1.5, using: &rng) }
        b = rng.floats(t * m); c = rng.floats(t * m); d = rng.floats(e)
    }

    /// Calls `body` with the operands laid out as the engine's scan reads them (`aT` `[M, E]`
    /// holding A·log2 e, B and C side by side in rows of 2M).
    func withOperands<R>(_ body: (ScanOperands) -> R) -> R {
        var aT = [Float](repeating: 0, count: m * e)
        for ch in 0..<e { for s in 0..<m { aT[s * e + ch] = a[ch * m + s] * log2e } }
        var bc = [Float](repeating: 0, count: t * 2 * m)
        for i in 0..<t { for s in 0..<m { bc[i * 2 * m + s] = b[i * m + s]; bc[i * 2 * m + m + s] = c[i * m + s] } }
        return x.withUnsafeBufferPointer { xp in delta.withUnsafeBufferPointer { dp in bc.withUnsafeBufferPointer { bcp in
            aT.withUnsafeBufferPointer { ap in d.withUnsafeBufferPointer { ddp in
                body(ScanOperands(x: xp.baseAddress!, ldx: e, delta: dp.baseAddress!, ldDelta: e,
                                  bc: bcp.baseAddress!, ldbc: 2 * m, aT: ap.baseAddress!, d: ddp.baseAddress!))
            } }
        } } }
    }

    /// Runs the fast scan on these operands (`.store`, or `.averageAndGate` with `z` on top of `initial`).
    func fast(reverse: Bool, gateWith z: [Float]? = nil, initial: [Float]? = nil) -> [Float] {
        var y = initial ?? [Float](repeating: 0, count: t * e)
        let state = ScratchBuffer(capacity: m * e), decay = ScratchBuffer(capacity: m * 8)
        withOperands { ops in
            (z ?? []).withUnsafeBufferPointer { zp in
                y.withUnsafeMutableBufferPointer { yp in
                    let out: ScanOutput = z == nil ? .store : .averageAndGate(z: zp.baseAddress!, ldz: e)
                    selectiveScan(ops, length: t, channels: e, states: m, reverse: reverse, output: out,
                                  state: state.pointer, decay: decay.pointer, into: yp.baseAddress!, ldy: e)
                }
            }
        }
        return y
    }

    /// The plain-loop reference scan.
    func reference(reverse: Bool) -> [Float] {
        selectiveScanReference(x: x, delta: delta, a: a, b: b, c: c, d: d, length: t, channels: e, states: m, reverse: reverse)
    }

    /// The fast hidden-attention kernel summed over `channels`: `[L', L']`.
    func attention(reverse: Bool, channels: Range<Int>) -> [Float] {
        var out = [Float](repeating: 0, count: t * t)
        withOperands { ops in
            out.withUnsafeMutableBufferPointer {
                hiddenAttention(ops, length: t, channels: e, states: m, reverse: reverse, channelRange: channels,
                                scratch: AttentionScratch(), accumulatingInto: $0.baseAddress!)
            }
        }
        return out
    }
}

/// `y[t] = Σ_s α[t, s]·x[s]` for one channel `ch` of a `[L', E]` signal (Double accumulation).
func applyAttention(_ alpha: [Float], to x: [Float], channel ch: Int, length t: Int, channels e: Int) -> [Float] {
    (0..<t).map { row in
        var acc = 0.0
        for s in 0..<t { acc += Double(alpha[row * t + s]) * Double(x[s * e + ch]) }
        return Float(acc)
    }
}
