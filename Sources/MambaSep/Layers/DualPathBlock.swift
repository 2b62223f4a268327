// A dual-path block: intra-chunk path, GroupNorm (+ skip), inter-chunk path, GroupNorm, sum.
//
// Glossary (docs/MODEL.md): `S` chunks, `K` chunk length (frames), `N` model width. The engine
// keeps chunked activations as `[S, K, N]` (PyTorch's `[B, N, K, S]` with B = 1, channels last):
// intra sequences are contiguous; the inter path works on a `[K, S, N]` transpose.

// MARK: - Weights

/// `masker.blocks.{i}`.
public struct DualPathBlockWeights: Sendable {
    public let intra: PathLayerWeights // masker.blocks.{i}.intra.*
    public let intraNormWeight: Tensor // masker.blocks.{i}.intra_norm.weight  [N]
    public let intraNormBias: Tensor   // masker.blocks.{i}.intra_norm.bias    [N]
    public let inter: PathLayerWeights // masker.blocks.{i}.inter.*
    public let interNormWeight: Tensor // masker.blocks.{i}.inter_norm.weight  [N]
    public let interNormBias: Tensor   // masker.blocks.{i}.inter_norm.bias    [N]

    public init(_ r: WeightReader, index i: Int, config: ModelConfig) throws {
        let p = "masker.blocks.\(i).", n = config.nFilters
        intra = try PathLayerWeights(r, prefix: p + "intra.", kind: config.intraMixer, config: config)
        intraNormWeight = try r.take(p + "intra_norm.weight", [n])
        intraNormBias = try r.take(p + "intra_norm.bias", [n])
        inter = try PathLayerWeights(r, prefix: p + "inter.", kind: config.interMixer, config: config)
        interNormWeight = try r.take(p + "inter_norm.weight", [n])
        interNormBias = try r.take(p + "inter_norm.bias", [n])
    }
}

// MARK: - Scratch

/// Buffers for one block's forward pass (shared by all blocks of a model), one quantity each.
public final class BlockScratch {
    let intraOut = ScratchBuffer()     // [S, K, N] GroupNorm(intra(u)) (+ u)
    let interIn = ScratchBuffer()      // [K, S, N] intraOut transposed
    let interOut = ScratchBuffer()     // [K, S, N] GroupNorm(inter(interIn))
    public let paths: [PathScratch]
    /// Rows per group handed to a path layer (≈ 512 keeps Mamba's buffers in L2).
    public var groupRows: Int
    public init(workers: Int, groupRows: Int = 512) {
        paths = (0..<max(1, workers)).map { _ in PathScratch() }
        self.groupRows = groupRows
    }
}

// MARK: - Forward

extension DualPathBlockWeights {
    /// Runs the block on `u [S, K, N]` in place: the intra path, then the inter path, each followed
    /// by its GroupNorm and its skip connection. `recorder` sees the scans of the paths it
    /// `records` (this block is block `index`).
    @_optimize(speed)
    public func forward(_ u: UnsafeMutablePointer<Float>, chunks s: Int, config: ModelConfig, scratch: BlockScratch,
                        recorder: ScanRecorder? = nil, index: Int = 0) {
        let k = config.chunkSize, n = config.nFilters, rows = s * k
        guard rows > 0 else { return }
        let a = scratch.intraOut.reserve(rows * n)          // [S, K, N]
        let tr = scratch.interIn.reserve(rows * n)          // [K, S, N]
        let e = scratch.interOut.reserve(rows * n)          // [K, S, N]
        func tap(_ path: PathKind) -> ScanTap? {
            let layer = MambaLayerID(block: index, path: path)
            guard let recorder, recorder.records(layer) else { return nil }
            return ScanTap(recorder: recorder, layer: layer)
        }
        // Intra: S sequences of K frames; a = GroupNorm(intra(u)) (+ u).
        intra.forward(u, sequences: s, length: k, config: config, groupRows: scratch.groupRows, scratch: scratch.paths,
                      into: a, tap: tap(.intra))
        groupNorm1(a, a, rows: rows, n: n, weight: intraNormWeight.pointer, bias: intraNormBias.pointer, eps: config.gnEps)
        if config.skipAroundIntra { addInPlace(a, u, count: rows * n) }
        // Inter: K sequences of S chunks; e = GroupNorm(inter(aᵀ)).
        transposeRows(a, tr, rows: s, cols: k, width: n)
        inter.forward(tr, sequences: k, length: s, config: config, groupRows: scratch.groupRows, scratch: scratch.paths,
                      into: e, tap: tap(.inter))
        groupNorm1(e, e, rows: rows, n: n, weight: interNormWeight.pointer, bias: interNormBias.pointer, eps: config.gnEps)
        // u = eᵀ + a.
        transposeRows(e, u, rows: k, cols: s, width: n)
        addInPlace(u, a, count: rows * n)
    }
}
