// The learned analysis / synthesis filterbanks: Conv1d(1→N) + ReLU, and ConvTranspose1d(N→1).
//
// Glossary (docs/MODEL.md): `Tp` padded samples (frames tile them exactly), `L` frames, `N`
// filters, `Kw` kernel size, `St` stride.

// MARK: - Weights

/// `encoder.conv` (followed by ReLU).
public struct EncoderWeights: Sendable {
    public let weight: Tensor          // encoder.conv.weight              [N, 1, Kw]

    public init(_ r: WeightReader, config: ModelConfig) throws {
        weight = try r.take("encoder.conv.weight", [config.nFilters, 1, config.kernelSize])
    }
}

/// `decoder.conv`: overlap-adds each frame's `Kw` synthesised samples at stride `St`.
public struct DecoderWeights: Sendable {
    public let weight: Tensor          // decoder.conv.weight              [N, 1, Kw]

    public init(_ r: WeightReader, config: ModelConfig) throws {
        weight = try r.take("decoder.conv.weight", [config.nFilters, 1, config.kernelSize])
    }
}

// MARK: - Forward

extension EncoderWeights {
    /// Encodes `Tp` padded samples (`Tp ≥ Kw`, `(Tp − Kw) % St == 0`) into `w [L, N]`
    /// (non-negative); `frames` holds the `[L, Kw]` im2col rows.
    public func forward(_ x: UnsafePointer<Float>, samples: Int, config: ModelConfig, frames: ScratchBuffer,
                        into w: UnsafeMutablePointer<Float>) {
        let n = config.nFilters, kw = config.kernelSize, st = config.stride
        conv1dMonoStrided(x, samples: samples, weight: weight, channels: n, kernel: kw, stride: st, frames: frames, into: w)
        reluInPlace(w, count: ((samples - kw) / st + 1) * n)
    }
}

extension DecoderWeights {
    /// Decodes `x [L, N]` into `(L − 1)·St + Kw` samples; `frames` holds the `[L, Kw]`
    /// synthesised rows before they are overlap-added.
    public func forward(_ x: UnsafePointer<Float>, frames l: Int, config: ModelConfig, scratch frames: ScratchBuffer,
                        into y: UnsafeMutablePointer<Float>) {
        convTranspose1dMono(x, frames: l, weight: weight, channels: config.nFilters, kernel: config.kernelSize,
                            stride: config.stride, scratch: frames, into: y)
    }
}
