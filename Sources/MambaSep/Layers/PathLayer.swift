// One path (intra or inter) of a dual-path block: y = RMSNorm_out(x + mixer(RMSNorm_in(x))).
//
// Glossary (docs/MODEL.md): `B'` independent sequences, `L'` their length, `G` sequences
// processed together (a group, sized to keep the working set in cache), `N` model width.

// MARK: - Weights

/// The sequence mixer of a path, chosen by the config's `intra_mixer` / `inter_mixer`.
public enum MixerWeights: Sendable {
    case mamba(BiMambaWeights)
    case s4d(BiS4DWeights)
}

/// A path layer `masker.blocks.{i}.{intra|inter}`.
public struct PathLayerWeights: Sendable {
    public let normIn: Tensor          // masker.blocks.{i}.{path}.norm_in.weight    [N]
    public let mixer: MixerWeights     // masker.blocks.{i}.{path}.mixer.*
    public let normOut: Tensor         // masker.blocks.{i}.{path}.norm_out.weight   [N]

    /// Reads the layer under `prefix` (e.g. `"masker.blocks.0.intra."`) with the given mixer kind.
    public init(_ r: WeightReader, prefix: String, kind: MixerKind, config: ModelConfig) throws {
        let n = config.nFilters
        normIn = try r.take(prefix + "norm_in.weight", [n])
        switch kind {
        case .mamba: mixer = .mamba(try BiMambaWeights(r, prefix: prefix + "mixer.", config: config))
        case .s4d: mixer = .s4d(try BiS4DWeights(r, prefix: prefix + "mixer.", config: config))
        }
        normOut = try r.take(prefix + "norm_out.weight", [n])
    }
}

// MARK: - Scratch

/// Per-worker buffers for a path layer, one quantity each.
public final class PathScratch {
    let normed = ScratchBuffer()       // [G·L', N] RMSNorm_in(x)
    let mixed = ScratchBuffer()        // [G·L', N] mixer output, then + x
    let mamba = MambaScratch()
    let s4d = S4DScratch()
    public init() {}
}

// MARK: - Forward

extension PathLayerWeights {
    /// Applies the layer to `B'` sequences of length `L'` (`x`, `out` `[B'·L', N]`, not
    /// overlapping), in groups of about `groupRows` rows spread over `scratch.count` workers.
    /// `tap` (a Mamba mixer's recorder) sees every group's scan operands.
    public func forward(_ x: UnsafePointer<Float>, sequences b: Int, length t: Int, config: ModelConfig,
                        groupRows: Int, scratch: [PathScratch], into out: UnsafeMutablePointer<Float>,
                        tap: ScanTap? = nil) {
        guard b > 0, t > 0 else { return }
        let n = config.nFilters
        let perGroup = max(1, min(b, groupRows / max(t, 1)))
        let groups = (b + perGroup - 1) / perGroup
        parallelFor(groups, workers: scratch.count) { gi, worker in
            let first = gi * perGroup
            let g = min(perGroup, b - first)
            forwardGroup(x + first * t * n, sequences: g, length: t, config: config, scratch: scratch[worker],
                         into: out + first * t * n, tap: tap?.advanced(by: first))
        }
    }

    /// Applies the layer to one group of `G` sequences of length `L'`: `x [G·L', N]` → `out [G·L', N]`.
    /// `x` and `out` must not overlap. `tap` is passed to a Mamba mixer (an S4D mixer has no scan).
    @_optimize(speed)
    public func forwardGroup(_ x: UnsafePointer<Float>, sequences g: Int, length t: Int, config: ModelConfig,
                             scratch: PathScratch, into out: UnsafeMutablePointer<Float>, tap: ScanTap? = nil) {
        let rows = g * t, n = config.nFilters
        guard rows > 0 else { return }
        let normed = scratch.normed.reserve(rows * n)      // [G·L', N]
        let mixed = scratch.mixed.reserve(rows * n)        // [G·L', N]
        rmsNorm(x, normed, rows: rows, n: n, weight: normIn.pointer, eps: config.rmsEps)
        switch mixer {
        case let .mamba(m): m.forward(normed, sequences: g, length: t, config: config, scratch: scratch.mamba, into: mixed, tap: tap)
        case let .s4d(s): s.forward(normed, sequences: g, length: t, config: config, scratch: scratch.s4d, into: mixed)
        }
        addInPlace(mixed, x, count: rows * n)
        rmsNorm(mixed, out, rows: rows, n: n, weight: normOut.pointer, eps: config.rmsEps)
    }
}
