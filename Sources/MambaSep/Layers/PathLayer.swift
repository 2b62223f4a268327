// One path (intra or inter) of a dual-path block: y = RMSNorm_out(x + mixer(RMSNorm_in(x))).
//
// Glossary: `B'` independent sequences, `T` their length, `G` sequences processed together
// (a group, sized to keep the working set in cache), `N` model width.

// MARK: - Mixer

/// The sequence mixer of a path, chosen by the config's `intra_mixer` / `inter_mixer`.
public enum Mixer: Sendable {
    case mamba(BiMamba)
    case s4d(BiS4D)
}

/// Per-worker buffers for a path layer.
public final class PathScratch {
    let normed = ScratchBuffer(), mixed = ScratchBuffer()
    let mamba = MambaScratch()
    let s4d = S4DScratch()
    public init() {}
}

// MARK: - Path layer

/// A path layer `masker.blocks.{i}.{intra|inter}`.
public struct PathLayer: Sendable {
    public let normIn: Tensor          // norm_in.weight                   [N]
    public let mixer: Mixer            // mixer.*
    public let normOut: Tensor         // norm_out.weight                  [N]
    public let n: Int
    public let eps: Float

    /// Reads the layer under `prefix` (e.g. `"masker.blocks.0.intra."`) with the given mixer kind.
    public init(_ r: WeightReader, prefix: String, kind: MixerKind, config: ModelConfig) throws {
        n = config.nFilters
        eps = config.rmsEps
        normIn = try r.take(prefix + "norm_in.weight", [n])
        switch kind {
        case .mamba:
            mixer = .mamba(BiMamba(weights: try BiMambaWeights(r, prefix: prefix + "mixer.", config: config), config: config))
        case .s4d:
            mixer = .s4d(BiS4D(weights: try BiS4DWeights(r, prefix: prefix + "mixer.", config: config), config: config))
        }
        normOut = try r.take(prefix + "norm_out.weight", [n])
    }

    /// Applies the layer to one group of `G` sequences of length `T`: `x [G·T, N]` → `out [G·T, N]`.
    /// `x` and `out` must not overlap.
    @_optimize(speed)
    public func forwardGroup(_ x: UnsafePointer<Float>, sequences g: Int, length t: Int,
                             scratch: PathScratch, into out: UnsafeMutablePointer<Float>) {
        let rows = g * t
        guard rows > 0 else { return }
        let normed = scratch.normed.reserve(rows * n)      // [G·T, N]
        let mixed = scratch.mixed.reserve(rows * n)        // [G·T, N]
        rmsNorm(x, normed, rows: rows, n: n, weight: normIn.pointer, eps: eps)
        switch mixer {
        case let .mamba(m): m.forward(normed, sequences: g, length: t, scratch: scratch.mamba, into: mixed)
        case let .s4d(s): s.forward(normed, sequences: g, length: t, scratch: scratch.s4d, into: mixed)
        }
        let count = rows * n
        var i = 0
        while i + 8 <= count { mixed.setVec8(i, mixed.vec8(i) + x.vec8(i)); i += 8 }
        while i < count { mixed[i] += x[i]; i += 1 }
        rmsNorm(mixed, out, rows: rows, n: n, weight: normOut.pointer, eps: eps)
    }

    /// Applies the layer to `B'` sequences of length `T` (`x`, `out` `[B'·T, N]`, not overlapping),
    /// in groups of about `groupRows` rows spread over `scratch.count` workers.
    public func forward(_ x: UnsafePointer<Float>, sequences b: Int, length t: Int,
                        groupRows: Int, scratch: [PathScratch], into out: UnsafeMutablePointer<Float>) {
        guard b > 0, t > 0 else { return }
        let perGroup = max(1, min(b, groupRows / max(t, 1)))
        let groups = (b + perGroup - 1) / perGroup
        parallelFor(groups, workers: scratch.count) { gi, worker in
            let first = gi * perGroup
            let g = min(perGroup, b - first)
            forwardGroup(x + first * t * n, sequences: g, length: t, scratch: scratch[worker], into: out + first * t * n)
        }
    }
}
