// Bidirectional Mamba mixer ("v2", as in Vision Mamba): shared in_proj and out_proj, separate
// conv / x_proj / dt_proj / A / D per direction.
//
// Glossary: `G` sequences in a group, `T` sequence length, `Rw = G·T` rows, `N` model width,
// `E` inner width (expand·N), `R` dt rank, `M` state size, `W` depthwise conv width.

import Foundation

// MARK: - Weights

/// One direction's parameters of a BiMamba mixer.
public struct MambaDirectionWeights: Sendable {
    /// Depthwise conv taps transposed to `[W, E]`; from `conv1d.weight` / `conv1d_b.weight` `[E, 1, W]`.
    public let convWeightT: Tensor
    public let convBias: Tensor        // conv1d.bias / conv1d_b.bias              [E]
    public let xProj: Tensor           // x_proj.weight / x_proj_b.weight          [R+2M, E]
    public let dtProj: Tensor          // dt_proj.weight / dt_proj_b.weight        [E, R]
    public let dtBias: Tensor          // dt_proj.bias / dt_proj_b.bias            [E]
    /// A·log2(e), A = −exp(A_log), transposed to `[M, E]`; from `A_log` / `A_b_log` `[E, M]`.
    public let aT: Tensor
    public let d: Tensor               // D / D_b                                  [E]
}

/// Parameters of a BiMamba mixer (state-dict prefix `….mixer.`).
public struct BiMambaWeights: Sendable {
    public let inProj: Tensor          // in_proj.weight                           [2E, N]
    public let forward: MambaDirectionWeights
    public let backward: MambaDirectionWeights
    public let outProj: Tensor         // out_proj.weight                          [N, E]

    /// Reads `prefix + "in_proj.weight"` etc. with the shapes the config implies.
    public init(_ r: WeightReader, prefix: String, config: ModelConfig) throws {
        let n = config.nFilters, e = config.innerWidth, rank = config.dtRank
        let m = config.dState, w = config.dConv
        inProj = try r.take(prefix + "in_proj.weight", [2 * e, n])
        func direction(_ sfx: String, aName: String, dName: String) throws -> MambaDirectionWeights {
            let conv = try r.take(prefix + "conv1d\(sfx).weight", [e, 1, w])
            let convT = Tensor(zeros: [w, e])                     // [W, E]
            for c in 0..<e { for j in 0..<w { convT.pointer[j * e + c] = conv.pointer[c * w + j] } }
            let aLog = try r.take(prefix + aName, [e, m])
            let aT = Tensor(zeros: [m, e])                        // [M, E]
            for c in 0..<e { for s in 0..<m { aT.pointer[s * e + c] = Float(-Foundation.exp(Double(aLog.pointer[c * m + s])) * 1.442_695_040_888_963_4) } }
            return MambaDirectionWeights(
                convWeightT: convT,
                convBias: try r.take(prefix + "conv1d\(sfx).bias", [e]),
                xProj: try r.take(prefix + "x_proj\(sfx).weight", [rank + 2 * m, e]),
                dtProj: try r.take(prefix + "dt_proj\(sfx).weight", [e, rank]),
                dtBias: try r.take(prefix + "dt_proj\(sfx).bias", [e]),
                aT: aT,
                d: try r.take(prefix + dName, [e]))
        }
        forward = try direction("", aName: "A_log", dName: "D")
        backward = try direction("_b", aName: "A_b_log", dName: "D_b")
        outProj = try r.take(prefix + "out_proj.weight", [n, e])
    }
}

// MARK: - Forward

/// Per-thread buffers for `BiMamba.forward`.
public final class MambaScratch {
    let xz = ScratchBuffer(), xc = ScratchBuffer(), dbc = ScratchBuffer()
    let delta = ScratchBuffer(), y = ScratchBuffer(), state = ScratchBuffer()
    public init() {}
}

/// The BiMamba mixer of one path layer.
public struct BiMamba: Sendable {
    public let weights: BiMambaWeights
    public let n: Int, e: Int, rank: Int, m: Int, w: Int

    public init(weights: BiMambaWeights, config: ModelConfig) {
        self.weights = weights
        n = config.nFilters; e = config.innerWidth; rank = config.dtRank; m = config.dState; w = config.dConv
    }

    /// Mixes `G` independent sequences of length `T` held as `h [G·T, N]` into `out [G·T, N]`.
    ///
    /// `h` and `out` must not overlap. `G·T == 0` does nothing.
    @_optimize(speed)
    public func forward(_ h: UnsafePointer<Float>, sequences g: Int, length t: Int,
                        scratch: MambaScratch, into out: UnsafeMutablePointer<Float>) {
        let rows = g * t
        guard rows > 0 else { return }
        let dbcWidth = rank + 2 * m
        let xz = scratch.xz.reserve(rows * 2 * e)          // [Rw, 2E]: x | z
        let xc = scratch.xc.reserve(rows * e)              // [Rw, E]
        let dbc = scratch.dbc.reserve(rows * dbcWidth)     // [Rw, R+2M]
        let delta = scratch.delta.reserve(rows * e)        // [Rw, E]
        let y = scratch.y.reserve(rows * e)                // [Rw, E]
        let state = scratch.state.reserve(m * (e + 8))     // [M, E] state + [M, 8] exp buffer

        linear(h, ldx: n, rows: rows, weight: weights.inProj, bias: nil,
               inFeatures: n, outFeatures: 2 * e, into: xz, ldy: 2 * e)
        for (dirIndex, dir) in [weights.forward, weights.backward].enumerated() {
            let reverse = dirIndex == 1
            // Depthwise conv + SiLU, per sequence (causal forward, anti-causal backward).
            for s in 0..<g {
                depthwiseConvSiLU(xz + s * t * 2 * e, ldx: 2 * e, len: t,
                                  weightT: dir.convWeightT.pointer, bias: dir.convBias.pointer,
                                  channels: e, width: w, reverse: reverse,
                                  into: xc + s * t * e, ldy: e)
            }
            linear(xc, ldx: e, rows: rows, weight: dir.xProj, bias: nil,
                   inFeatures: e, outFeatures: dbcWidth, into: dbc, ldy: dbcWidth)
            linear(dbc, ldx: dbcWidth, rows: rows, weight: dir.dtProj, bias: dir.dtBias,
                   inFeatures: rank, outFeatures: e, into: delta, ldy: e)
            softplusInPlace(delta, count: rows * e)
            for s in 0..<g {
                let ops = ScanOperands(x: xc + s * t * e, ldx: e, delta: delta + s * t * e, ldDelta: e,
                                       bc: dbc + s * t * dbcWidth + rank, ldbc: dbcWidth,
                                       aT: dir.aT.pointer, d: dir.d.pointer)
                let output: ScanOutput = reverse
                    ? .averageAndGate(z: xz + s * t * 2 * e + e, ldz: 2 * e) : .store
                selectiveScan(ops, length: t, channels: e, states: m, reverse: reverse, output: output,
                              state: state, into: y + s * t * e, ldy: e)
            }
        }
        linear(y, ldx: e, rows: rows, weight: weights.outProj, bias: nil,
               inFeatures: e, outFeatures: n, into: out, ldy: n)
    }
}
