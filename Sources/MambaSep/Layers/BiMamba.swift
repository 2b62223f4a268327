// Bidirectional Mamba mixer ("v2", as in Vision Mamba): shared in_proj and out_proj, separate
// conv / x_proj / dt_proj / A / D per direction.
//
// Glossary (docs/MODEL.md): `G` sequences in a group, `L'` their length, `Rw = G·L'` rows, `N`
// model width, `E` inner width (expand·N), `R` dt rank, `M` state size, `W` depthwise conv width.

import Foundation

// MARK: - Weights

/// One direction's parameters of a BiMamba mixer (state-dict keys under `….mixer.`; the backward
/// direction's carry the `_b` suffix).
public struct MambaDirectionWeights: Sendable {
    /// Depthwise conv taps, channels contiguous: `conv1d.weight` / `conv1d_b.weight` `[E, 1, W]`
    /// stored as `[W, E]` (`depthwiseTaps`).
    public let convTaps: Tensor
    public let convBias: Tensor        // conv1d.bias / conv1d_b.bias              [E]
    public let xProj: Tensor           // x_proj.weight / x_proj_b.weight          [R+2M, E]
    public let dtProj: Tensor          // dt_proj.weight / dt_proj_b.weight        [E, R]
    public let dtBias: Tensor          // dt_proj.bias / dt_proj_b.bias            [E]
    /// A·log2(e) with A = −exp(A_log), states outermost: `A_log` / `A_b_log` `[E, M]` stored as
    /// `[M, E]` (`scanDecayRates`).
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
            MambaDirectionWeights(
                convTaps: depthwiseTaps(try r.take(prefix + "conv1d\(sfx).weight", [e, 1, w])),
                convBias: try r.take(prefix + "conv1d\(sfx).bias", [e]),
                xProj: try r.take(prefix + "x_proj\(sfx).weight", [rank + 2 * m, e]),
                dtProj: try r.take(prefix + "dt_proj\(sfx).weight", [e, rank]),
                dtBias: try r.take(prefix + "dt_proj\(sfx).bias", [e]),
                aT: scanDecayRates(aLog: try r.take(prefix + aName, [e, m])),
                d: try r.take(prefix + dName, [e]))
        }
        forward = try direction("", aName: "A_log", dName: "D")
        backward = try direction("_b", aName: "A_b_log", dName: "D_b")
        outProj = try r.take(prefix + "out_proj.weight", [n, e])
    }
}

// MARK: - Loader transforms

/// Depthwise conv taps `[E, 1, W]` (PyTorch) as `[W, E]`, so the kernel reads 8 channels at once.
func depthwiseTaps(_ weight: Tensor) -> Tensor {
    transposed(weight, rows: weight.shape[0], cols: weight.shape[2])                       // [W, E]
}

/// `A_log [E, M]` as the scan wants it: A·log2(e) with A = −exp(A_log) (computed in Double),
/// transposed to `[M, E]`, so that exp(Δ·A) = 2^(Δ·A·log2 e).
func scanDecayRates(aLog: Tensor) -> Tensor {
    let rates = Tensor(zeros: aLog.shape)                                                   // [E, M]
    for i in 0..<aLog.count { rates.pointer[i] = Float(-Foundation.exp(Double(aLog.pointer[i])) * log2eDouble) }
    return transposed(rates, rows: aLog.shape[0], cols: aLog.shape[1])                      // [M, E]
}

// MARK: - Scratch

/// Per-thread buffers for `BiMambaWeights.forward`, one quantity each.
public final class MambaScratch {
    let xz = ScratchBuffer()           // [Rw, 2E] in_proj output: x | z
    let xc = ScratchBuffer()           // [Rw, E] one direction's conv + SiLU output
    let dbc = ScratchBuffer()          // [Rw, R+2M] one direction's x_proj output: dt | B | C
    let delta = ScratchBuffer()        // [Rw, E] one direction's step sizes Δ
    let y = ScratchBuffer()            // [Rw, E] the scans' output: forward, then merged and gated
    let state = ScratchBuffer()        // [M, E] one scan's state
    let decay = ScratchBuffer()        // [M, 8] exp(Δ·A) of one step's 8-channel block
    public init() {}
}

// MARK: - Forward

extension BiMambaWeights {
    /// Mixes `G` independent sequences of length `L'` held as `h [G·L', N]` into `out [G·L', N]`:
    /// in_proj, each direction's conv / projections / scan (the backward one merging and gating
    /// both), out_proj. `h` and `out` must not overlap. `G·L' == 0` does nothing. `tap`, when
    /// given, receives each direction's scan operands (`ScanRecorder`).
    @_optimize(speed)
    public func forward(_ h: UnsafePointer<Float>, sequences g: Int, length t: Int, config: ModelConfig,
                        scratch: MambaScratch, into out: UnsafeMutablePointer<Float>, tap: ScanTap? = nil) {
        let rows = g * t
        guard rows > 0 else { return }
        let n = config.nFilters, e = config.innerWidth
        let xz = scratch.xz.reserve(rows * 2 * e)          // [Rw, 2E]: x | z
        let y = scratch.y.reserve(rows * e)                // [Rw, E]
        linear(h, ldx: n, rows: rows, weight: inProj, bias: nil, inFeatures: n, outFeatures: 2 * e, into: xz, ldy: 2 * e)
        scanDirection(forward, xz: xz, sequences: g, length: t, reverse: false, config: config, scratch: scratch, into: y, tap: tap)
        scanDirection(backward, xz: xz, sequences: g, length: t, reverse: true, config: config, scratch: scratch, into: y, tap: tap)
        linear(y, ldx: e, rows: rows, weight: outProj, bias: nil, inFeatures: e, outFeatures: n, into: out, ldy: n)
    }

    /// One direction: depthwise conv + SiLU (causal forward, anti-causal backward), x_proj,
    /// dt_proj + softplus, then the scan into `y` (the backward direction averages with the
    /// forward output already in `y` and gates with SiLU(z)). `tap` sees the operands before the scan.
    @_optimize(speed)
    func scanDirection(_ dir: MambaDirectionWeights, xz: UnsafePointer<Float>, sequences g: Int, length t: Int,
                       reverse: Bool, config: ModelConfig, scratch: MambaScratch, into y: UnsafeMutablePointer<Float>,
                       tap: ScanTap? = nil) {
        let e = config.innerWidth, rank = config.dtRank, m = config.dState
        let rows = g * t, dbcWidth = rank + 2 * m
        let xc = scratch.xc.reserve(rows * e)              // [Rw, E]
        let dbc = scratch.dbc.reserve(rows * dbcWidth)     // [Rw, R+2M]
        let delta = scratch.delta.reserve(rows * e)        // [Rw, E]
        let state = scratch.state.reserve(m * e)           // [M, E]
        let decay = scratch.decay.reserve(m * 8)           // [M, 8]
        for s in 0..<g {
            depthwiseConvSiLU(xz + s * t * 2 * e, ldx: 2 * e, len: t,
                              weightT: dir.convTaps.pointer, bias: dir.convBias.pointer,
                              channels: e, width: config.dConv, reverse: reverse,
                              into: xc + s * t * e, ldy: e)
        }
        linear(xc, ldx: e, rows: rows, weight: dir.xProj, bias: nil,
               inFeatures: e, outFeatures: dbcWidth, into: dbc, ldy: dbcWidth)
        linear(dbc, ldx: dbcWidth, rows: rows, weight: dir.dtProj, bias: dir.dtBias,
               inFeatures: rank, outFeatures: e, into: delta, ldy: e)
        softplusInPlace(delta, count: rows * e)
        if let tap {
            tap.recorder.record(ScanGroup(layer: tap.layer, reverse: reverse, firstSequence: tap.firstSequence,
                                          sequences: g, length: t, channels: e, states: m, x: xc, delta: delta,
                                          dbc: dbc, rank: rank, aT: dir.aT.pointer, d: dir.d.pointer))
        }
        for s in 0..<g {
            let ops = ScanOperands(x: xc + s * t * e, ldx: e, delta: delta + s * t * e, ldDelta: e,
                                   bc: dbc + s * t * dbcWidth + rank, ldbc: dbcWidth,
                                   aT: dir.aT.pointer, d: dir.d.pointer)
            let output: ScanOutput = reverse ? .averageAndGate(z: xz + s * t * 2 * e + e, ldz: 2 * e) : .store
            selectiveScan(ops, length: t, channels: e, states: m, reverse: reverse, output: output,
                          state: state, decay: decay, into: y + s * t * e, ldy: e)
        }
    }
}
