// The Mamba selective scan (S6) over one sequence, vectorised across channels, and a plain-loop
// reference beside it.
//
// Glossary (docs/MODEL.md): `L'` sequence length (time steps), `E` channels (Mamba inner
// width), `M` state size.
//
// Recurrence per channel e, state m, step t (h₋₁ = 0):
//   h[e,m] = exp(Δ[t,e]·A[e,m])·h[e,m] + Δ[t,e]·B[t,m]·x[t,e]
//   y[t,e] = Σ_m C[t,m]·h[e,m] + D[e]·x[t,e]
// The backward direction of BiMamba is the same recurrence run from t = L'−1 down to 0, which is
// the scan of the time-reversed sequence with its output already flipped back.

import Foundation

// MARK: - Operands

/// Pointers and strides for one sequence's scan; all arrays are row-major with rows `ld*` apart.
public struct ScanOperands {
    /// Input after conv + SiLU, `[L', E]`.
    public var x: UnsafePointer<Float>
    public var ldx: Int
    /// Step sizes Δ (after softplus), `[L', E]`.
    public var delta: UnsafePointer<Float>
    public var ldDelta: Int
    /// B at `bc[t·ldbc + m]` and C at `bc[t·ldbc + M + m]`.
    public var bc: UnsafePointer<Float>
    public var ldbc: Int
    /// A·log2(e) with A = −exp(A_log), transposed to `[M, E]`.
    public var aT: UnsafePointer<Float>
    /// Skip weights D, `[E]`.
    public var d: UnsafePointer<Float>

    public init(x: UnsafePointer<Float>, ldx: Int, delta: UnsafePointer<Float>, ldDelta: Int,
                bc: UnsafePointer<Float>, ldbc: Int, aT: UnsafePointer<Float>, d: UnsafePointer<Float>) {
        self.x = x; self.ldx = ldx; self.delta = delta; self.ldDelta = ldDelta
        self.bc = bc; self.ldbc = ldbc; self.aT = aT; self.d = d
    }
}

/// What the scan does with each `y[t]` it computes.
public enum ScanOutput {
    /// `out[t] = y[t]`.
    case store
    /// `out[t] = (out[t] + y[t]) / 2 · SiLU(z[t])`: the second direction of BiMamba, with the
    /// average and the gate fused in. `z` rows are `ldz` apart.
    case averageAndGate(z: UnsafePointer<Float>, ldz: Int)
}

// MARK: - Fast scan

/// Selective scan of one sequence, 8 channels per SIMD lane group, loop order time → channel
/// block → state. For each (step, 8-channel block) a first pass computes exp(Δ·A) for all M
/// states into a small buffer, a second runs the recurrence with two accumulators; splitting
/// the passes keeps the exponential's constants in registers (≈20 % faster than one fused loop).
///
/// `op.aT` must hold A·log2(e) (see `ScanOperands`), so that exp(Δ·A) = 2^(Δ·A·log2 e) needs no
/// range-reduction multiply. `E` must be a multiple of 8 (the loader checks). `L' == 0` writes
/// nothing. `state` is scratch of `M·E` floats, cleared here; `decay` of `M·8` floats.
@inlinable @_optimize(speed)
public func selectiveScan(_ op: ScanOperands, length t: Int, channels e: Int, states m: Int,
                          reverse: Bool, output: ScanOutput,
                          state h: UnsafeMutablePointer<Float>, decay dA: UnsafeMutablePointer<Float>,
                          into y: UnsafeMutablePointer<Float>, ldy: Int) {
    precondition(e % 8 == 0, "selectiveScan needs a channel count divisible by 8, got \(e)")
    h.update(repeating: 0, count: m * e)                 // [M, E] state
                                                         // dA: [M, 8] exp(Δ·A) of one block
    let m2 = m & ~1
    for step in 0..<t {
        let ts = reverse ? t - 1 - step : step
        let xr = op.x + ts * op.ldx
        let dr = op.delta + ts * op.ldDelta
        let bRow = op.bc + ts * op.ldbc
        let cRow = bRow + m
        let yr = y + ts * ldy
        var c = 0
        while c < e {
            let dv = dr.vec8(c)
            // Pass 1: exp(Δ·A) for every state of this block.
            var ap = op.aT + c
            var s = 0
            while s < m2 {
                let z0 = dv * ap.vec8(0), z1 = dv * ap.vec8(e)
                dA.setVec8(8 * s, fastExp2Scan(z0))
                dA.setVec8(8 * s + 8, fastExp2Scan(z1))
                ap += 2 * e
                s += 2
            }
            if s < m { dA.setVec8(8 * s, fastExp2Scan(dv * ap.vec8(0))) }
            // Pass 2: the recurrence and the output.
            let xv = xr.vec8(c)
            let du = dv * xv
            var acc0 = op.d.vec8(c) * xv
            var acc1 = Vec8(repeating: 0)
            var hp = h + c
            s = 0
            while s < m2 {
                let h0 = (du * Vec8(repeating: bRow[s])).addingProduct(dA.vec8(8 * s), hp.vec8(0))
                let h1 = (du * Vec8(repeating: bRow[s + 1])).addingProduct(dA.vec8(8 * s + 8), hp.vec8(e))
                hp.setVec8(0, h0)
                hp.setVec8(e, h1)
                acc0 = acc0.addingProduct(h0, Vec8(repeating: cRow[s]))
                acc1 = acc1.addingProduct(h1, Vec8(repeating: cRow[s + 1]))
                hp += 2 * e
                s += 2
            }
            if s < m {
                let hv = (du * Vec8(repeating: bRow[s])).addingProduct(dA.vec8(8 * s), hp.vec8(0))
                hp.setVec8(0, hv)
                acc0 = acc0.addingProduct(hv, Vec8(repeating: cRow[s]))
            }
            let acc = acc0 + acc1
            switch output {
            case .store:
                yr.setVec8(c, acc)
            case let .averageAndGate(z, ldz):
                let zv = (z + ts * ldz).vec8(c)
                yr.setVec8(c, (yr.vec8(c) + acc) * 0.5 * fastSiLU(zv))
            }
            c += 8
        }
    }
}

/// 2^z for z ≤ 0 as the scan needs it: z is clamped to ≥ −125 (so 2^z ≥ 2.4e-38 instead of
/// underflowing to 0, which is harmless: it multiplies the previous state), then
/// 2^z = 2^n · 2^f with n = round(z), f ∈ [−½, ½], and 2^f = 1 + f·P(f), P of degree 5
/// (near-minimax; max relative error ≤ 2e-7 in float, measured in the tests). The 2^n scaling adds
/// n to the exponent field directly. Inputs above 0 are not supported (no upper clamp).
@inlinable @inline(__always) @_optimize(speed)
public func fastExp2Scan(_ z: Vec8) -> Vec8 {
    let z = vmax(z, Vec8(repeating: -125))
    let n = z.rounded(.toNearestOrEven)
    let f = z - n                                                // [−½, ½]
    var p = Vec8(repeating: 1.539_406_573_611_550_5e-4)
    p = Vec8(repeating: 1.340_814_590_699_720_3e-3).addingProduct(p, f)
    p = Vec8(repeating: 9.618_324_074_692_17e-3).addingProduct(p, f)
    p = Vec8(repeating: 5.550_302_193_370_139_4e-2).addingProduct(p, f)
    p = Vec8(repeating: 2.402_264_843_632_864_7e-1).addingProduct(p, f)
    p = Vec8(repeating: 6.931_472_240_721_1e-1).addingProduct(p, f)
    let r = Vec8(repeating: 1).addingProduct(p, f)               // 2^f ∈ [0.70, 1.42]
    // n << 23 added to r's bits scales by 2^n (r·2^n stays a normal float for n ≥ −125).
    let nShift = vtruncate(n) &<< 23
    return unsafeBitCast(unsafeBitCast(r, to: SIMD8<Int32>.self) &+ nShift, to: Vec8.self)
}

// MARK: - Reference scan

/// Plain-loop selective scan (one sequence, Foundation `exp`, no SIMD) for tests.
///
/// Arrays are dense: `x`, `delta` `[L', E]`; `b`, `c` `[L', M]`; `a` `[E, M]` (already
/// −exp(A_log)); `d` `[E]`. Returns `y [L', E]`; `reverse` scans from the last step to the first.
public func selectiveScanReference(x: [Float], delta: [Float], a: [Float], b: [Float], c: [Float], d: [Float],
                                   length t: Int, channels e: Int, states m: Int, reverse: Bool) -> [Float] {
    var h = [Float](repeating: 0, count: e * m)
    var y = [Float](repeating: 0, count: t * e)
    for step in 0..<t {
        let ts = reverse ? t - 1 - step : step
        for ch in 0..<e {
            let dt = delta[ts * e + ch]
            let u = x[ts * e + ch]
            var acc: Float = d[ch] * u
            for s in 0..<m {
                h[ch * m + s] = Foundation.exp(dt * a[ch * m + s]) * h[ch * m + s] + dt * b[ts * m + s] * u
                acc += c[ts * m + s] * h[ch * m + s]
            }
            y[ts * e + ch] = acc
        }
    }
    return y
}
