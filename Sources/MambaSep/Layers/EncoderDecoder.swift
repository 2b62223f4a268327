// The learned analysis / synthesis filterbanks: Conv1d(1→N) + ReLU, and ConvTranspose1d(N→1).
//
// Glossary: `T` samples (padded so frames tile exactly), `L` frames, `N` filters, `Kw` kernel
// width, `St` stride.

// MARK: - Encoder

/// `encoder.conv` followed by ReLU.
public struct WaveEncoder: Sendable {
    public let weight: Tensor          // encoder.conv.weight              [N, 1, Kw]
    public let n: Int, kernel: Int, stride: Int

    public init(_ r: WeightReader, config: ModelConfig) throws {
        n = config.nFilters; kernel = config.kernelSize; stride = config.stride
        weight = try r.take("encoder.conv.weight", [n, 1, kernel])
    }

    /// Number of frames for `samples` padded samples (`samples ≥ Kw`, `(samples − Kw) % St == 0`).
    public func frameCount(samples: Int) -> Int { (samples - kernel) / stride + 1 }

    /// Encodes padded samples into `w [L, N]` (non-negative).
    public func forward(_ x: UnsafePointer<Float>, samples: Int, scratch: ScratchBuffer, into w: UnsafeMutablePointer<Float>) {
        conv1dMonoStrided(x, samples: samples, weight: weight, channels: n, kernel: kernel, stride: stride,
                          frames: scratch, into: w)
        reluInPlace(w, count: frameCount(samples: samples) * n)
    }
}

// MARK: - Decoder

/// `decoder.conv`: overlap-adds each frame's `Kw` synthesised samples at stride `St`.
public struct WaveDecoder: Sendable {
    public let weight: Tensor          // decoder.conv.weight              [N, 1, Kw]
    public let n: Int, kernel: Int, stride: Int

    public init(_ r: WeightReader, config: ModelConfig) throws {
        n = config.nFilters; kernel = config.kernelSize; stride = config.stride
        weight = try r.take("decoder.conv.weight", [n, 1, kernel])
    }

    /// Decodes `x [L, N]` into `(L − 1)·St + Kw` samples.
    public func forward(_ x: UnsafePointer<Float>, frames l: Int, scratch: ScratchBuffer, into y: UnsafeMutablePointer<Float>) {
        convTranspose1dMono(x, frames: l, weight: weight, channels: n, kernel: kernel, stride: stride,
                            scratch: scratch, into: y)
    }
}
