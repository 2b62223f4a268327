// The Mamba selective scan (S6) over one sequence, vectorised across channels, and a plain-loop
// reference beside it.
//
// Glossary: `T` sequence length (time steps), `E` channels (Mamba inner width), `M` state size.
//
// Recurrence per channel e, state m, step t (h₋₁ = 0):
//   h[e,m] = exp(Δ[t,e]·A[e,m])·h[e,m] + Δ[t,e]·B[t,m]·x[t,e]
//   y[t,e] = Σ_m C[t,m]·h[e,m] + D[e]·x[t,e]
// The backward direction of BiMamba is the same recurrence run from t = T−1 down to 0, which is
// the scan of the time-reversed sequence with its output already flipped back.

import Foundation

// MARK: - Operands

/// Pointers and strides for one sequence's scan; all arrays are row-major with rows `ld*` apart.
public struct ScanOperands {
    /// Input after conv + SiLU, `[T, E]`.
    public var x: UnsafePointer<Float>
    public var ldx: Int
    /// Step sizes Δ (after softplus), `[T, E]`.
    public var delta: UnsafePointer<Float>
    public var ldDelta: Int
    /// B at `bc[t·ldbc + m]` and C at `bc[t·ldbc + M + m]`.
    public var bc: UnsafePointer<Float>
    public var ldbc: Int
    /// A = −exp(A_log), transposed to `[M, E]`.
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
/// block → state (Δ, x and the output stay in registers; the `[M, E]` state lives in L1).
///
/// `E` must be a multiple of 8 (Mamba widths are; the model loader checks). `T == 0` writes
/// nothing. `state` is scratch of `M·E` floats; it is cleared here.
@inlinable
@_optimize(speed)
public func selectiveScan(_ op: ScanOperands, length t: Int, channels e: Int, states m: Int,
                          reverse: Bool, output: ScanOutput,
                          state h: UnsafeMutablePointer<Float>,
                          into y: UnsafeMutablePointer<Float>, ldy: Int) {
    precondition(e % 8 == 0, "selectiveScan needs a channel count divisible by 8, got \(e)")
    h.update(repeating: 0, count: m * e)
    let floor = Vec8(repeating: -87.3)
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
            let xv = xr.vec8(c)
            let du = dv * xv
            var acc = op.d.vec8(c) * xv
            var hp = h + c
            var ap = op.aT + c
            for s in 0..<m {
                // exp(Δ·A) with Δ·A ≤ 0: only the lower clamp of fastExp matters.
                let dA = fastExpNonPositive(pointwiseMax(dv * ap.vec8(0), floor))
                let hv = (du * Vec8(repeating: bRow[s])).addingProduct(dA, hp.vec8(0))
                hp.setVec8(0, hv)
                acc = acc.addingProduct(hv, Vec8(repeating: cRow[s]))
                hp += e
                ap += e
            }
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

/// e^x for x ∈ [−87.3, 0] (callers clamp): `fastExp` without the clamp, same accuracy.
@inlinable @inline(__always) @_optimize(speed)
public func fastExpNonPositive(_ x: Vec8) -> Vec8 {
    let magic = Vec8(repeating: 12_582_912.0)
    let t = magic.addingProduct(x, Vec8(repeating: 1.442_695_040_888_963_4))
    let n = t - magic
    var r = x.addingProduct(n, Vec8(repeating: -0.693_359_375))
    r = r.addingProduct(n, Vec8(repeating: 2.121_944_400_546_905_8e-4))
    var p = Vec8(repeating: 1.987_569_150_0e-4)
    p = Vec8(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
    p = Vec8(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
    p = Vec8(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
    p = Vec8(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
    p = Vec8(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
    let yv = (r + 1).addingProduct(p, r * r)
    let tb = unsafeBitCast(t, to: SIMD8<Int32>.self)
    let scale = unsafeBitCast((tb &- (0x4B40_0000 - 127)) &<< 23, to: Vec8.self)
    return yv * scale
}

// MARK: - Reference scan

/// Plain-loop selective scan (one sequence, Foundation `exp`, no SIMD) for tests.
///
/// Arrays are dense: `x`, `delta` `[T, E]`; `b`, `c` `[T, M]`; `a` `[E, M]` (already −exp(A_log));
/// `d` `[E]`. Returns `y [T, E]`; `reverse` scans from the last step to the first.
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
