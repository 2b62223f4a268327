// A dual-path block: intra-chunk path, GroupNorm (+ skip), inter-chunk path, GroupNorm, sum.
//
// Glossary: `S` chunks, `K` chunk length (frames), `N` model width. The engine keeps chunked
// activations as `[S, K, N]` (PyTorch's `[B, N, K, S]` with B = 1, channels last): intra
// sequences are contiguous; the inter path works on a `[K, S, N]` transpose.

// MARK: - Weights

/// `masker.blocks.{i}`.
public struct DualPathBlock: Sendable {
    public let intra: PathLayer        // masker.blocks.{i}.intra.*
    public let intraNormWeight: Tensor // masker.blocks.{i}.intra_norm.weight  [N]
    public let intraNormBias: Tensor   // masker.blocks.{i}.intra_norm.bias    [N]
    public let inter: PathLayer        // masker.blocks.{i}.inter.*
    public let interNormWeight: Tensor // masker.blocks.{i}.inter_norm.weight  [N]
    public let interNormBias: Tensor   // masker.blocks.{i}.inter_norm.bias    [N]
    public let skipAroundIntra: Bool
    public let n: Int
    public let eps: Float

    public init(_ r: WeightReader, index i: Int, config: ModelConfig) throws {
        let p = "masker.blocks.\(i)."
        n = config.nFilters
        eps = config.gnEps
        skipAroundIntra = config.skipAroundIntra
        intra = try PathLayer(r, prefix: p + "intra.", kind: config.intraMixer, config: config)
        intraNormWeight = try r.take(p + "intra_norm.weight", [n])
        intraNormBias = try r.take(p + "intra_norm.bias", [n])
        inter = try PathLayer(r, prefix: p + "inter.", kind: config.interMixer, config: config)
        interNormWeight = try r.take(p + "inter_norm.weight", [n])
        interNormBias = try r.take(p + "inter_norm.bias", [n])
    }
}

// MARK: - Forward

/// Buffers for one block's forward pass (shared by all blocks of a model).
public final class BlockScratch {
    let a = ScratchBuffer(), transposed = ScratchBuffer(), e = ScratchBuffer()
    public let paths: [PathScratch]
    /// Rows per group handed to a path layer (≈ 512 keeps Mamba's buffers in L2).
    public var groupRows: Int
    public init(workers: Int, groupRows: Int = 512) {
        paths = (0..<max(1, workers)).map { _ in PathScratch() }
        self.groupRows = groupRows
    }
}

extension DualPathBlock {
    /// Runs the block on `u [S, K, N]` in place.
    @_optimize(speed)
    public func forward(_ u: UnsafeMutablePointer<Float>, chunks s: Int, chunkLength k: Int, scratch: BlockScratch) {
        let rows = s * k
        guard rows > 0 else { return }
        let a = scratch.a.reserve(rows * n)                 // [S, K, N]
        let tr = scratch.transposed.reserve(rows * n)       // [K, S, N]
        let e = scratch.e.reserve(rows * n)                 // [K, S, N]
        // Intra: S sequences of K frames.
        intra.forward(u, sequences: s, length: k, groupRows: scratch.groupRows, scratch: scratch.paths, into: a)
        groupNorm1(a, a, rows: rows, n: n, weight: intraNormWeight.pointer, bias: intraNormBias.pointer, eps: eps)
        if skipAroundIntra {
            var i = 0
            let count = rows * n
            while i + 8 <= count { a.setVec8(i, a.vec8(i) + u.vec8(i)); i += 8 }
            while i < count { a[i] += u[i]; i += 1 }
        }
        // Inter: K sequences of S chunks.
        transposeRows(a, tr, rows: s, cols: k, width: n)
        inter.forward(tr, sequences: k, length: s, groupRows: scratch.groupRows, scratch: scratch.paths, into: e)
        // out[s, k] = GroupNorm(e)[k, s] + a[s, k]
        let (mean, variance) = meanAndVariance(e, rows: rows, n: n)
        groupNorm1Apply(e, e, rows: rows, n: n, mean: mean, variance: variance,
                        weight: interNormWeight.pointer, bias: interNormBias.pointer, eps: eps)
        for si in 0..<s {
            for ki in 0..<k {
                let dst = u + (si * k + ki) * n, src = e + (ki * s + si) * n, skip = a + (si * k + ki) * n
                var c = 0
                while c + 8 <= n { dst.setVec8(c, src.vec8(c) + skip.vec8(c)); c += 8 }
                while c < n { dst[c] = src[c] + skip[c]; c += 1 }
            }
        }
    }
}
