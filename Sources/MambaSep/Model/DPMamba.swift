// The DPMamba separation network (docs/MODEL.md): weights, scratch and the forward pass.
//
// Glossary: `T` input samples, `Tp` padded samples, `N` filters (model width), `L` encoder
// frames, `K` chunk length, `H` hop (K/2), `S` chunks, `C` speakers. Activations are channels
// last: encoder output `[L, N]`, chunked `[S, K, N]`, masks `[C, L, N]`.
//
// Like llama2.c the model is split into a config (`ModelConfig`), read-only weights
// (`DPMambaWeights`) and mutable buffers (`DPMambaScratch`), so one set of weights can serve
// several threads, each with its own scratch.

import Foundation

// MARK: - Weights

/// All parameters of a DPMamba model, with the state-dict key of each.
public struct DPMambaWeights: Sendable {
    public let encoder: WaveEncoder              // encoder.conv.weight                [N, 1, Kw]
    public let normWeight: Tensor            // masker.norm.weight                 [N]
    public let normBias: Tensor              // masker.norm.bias                   [N]
    public let convIn: Tensor                // masker.conv_in.weight              [N, N, 1]
    public let blocks: [DualPathBlock]       // masker.blocks.{i}.*
    public let prelu: Tensor                 // masker.prelu.weight                [1]
    public let convOut: Tensor               // masker.conv_out.weight             [C·N, N, 1]
    public let convOutBias: Tensor           // masker.conv_out.bias               [C·N]
    public let output: Tensor                // masker.output.weight               [N, N, 1]
    public let outputBias: Tensor            // masker.output.bias                 [N]
    public let outputGate: Tensor            // masker.output_gate.weight          [N, N, 1]
    public let outputGateBias: Tensor        // masker.output_gate.bias            [N]
    public let endConv: Tensor               // masker.end_conv.weight             [N, N, 1]
    public let decoder: WaveDecoder              // decoder.conv.weight                [N, 1, Kw]
    /// Number of scalar parameters read.
    public let parameterCount: Int

    /// Reads every tensor the config requires; `reader.finish()` is called, so leftovers
    /// (other than the reader's ignored prefixes) are an error.
    public init(_ r: WeightReader, config: ModelConfig) throws {
        let n = config.nFilters, c = config.numSpeakers
        encoder = try WaveEncoder(r, config: config)
        normWeight = try r.take("masker.norm.weight", [n])
        normBias = try r.take("masker.norm.bias", [n])
        convIn = try r.take("masker.conv_in.weight", [n, n, 1])
        blocks = try (0..<config.numBlocks).map { try DualPathBlock(r, index: $0, config: config) }
        prelu = try r.take("masker.prelu.weight", [1])
        convOut = try r.take("masker.conv_out.weight", [c * n, n, 1])
        convOutBias = try r.take("masker.conv_out.bias", [c * n])
        output = try r.take("masker.output.weight", [n, n, 1])
        outputBias = try r.take("masker.output.bias", [n])
        outputGate = try r.take("masker.output_gate.weight", [n, n, 1])
        outputGateBias = try r.take("masker.output_gate.bias", [n])
        endConv = try r.take("masker.end_conv.weight", [n, n, 1])
        decoder = try WaveDecoder(r, config: config)
        try r.finish()
        parameterCount = r.parameterCount
    }
}

// MARK: - Scratch

/// Buffers reused across forward passes (grown to the largest window seen). Not thread-safe.
public final class DPMambaScratch {
    let padded = ScratchBuffer(), frames = ScratchBuffer()
    let w = ScratchBuffer(), v = ScratchBuffer(), u = ScratchBuffer()
    let head = ScratchBuffer(), ola = ScratchBuffer(), gated = ScratchBuffer(), gate = ScratchBuffer()
    let decoded = ScratchBuffer()
    public let blocks: BlockScratch

    /// `workers`: threads the path layers may use (each gets its own buffers).
    public init(workers: Int = 1) {
        blocks = BlockScratch(workers: workers)
    }
}

/// Named points of the forward pass, for parity checks (layouts are the engine's, channels last).
public enum ForwardStage: Equatable, Sendable {
    case encoder            // [L, N] after ReLU
    case chunked            // [S, K, N] after conv_in and chunking
    case block(Int)         // [S, K, N] after block i
    case masks              // [C, L, N]
    case output             // [C, T]
}

/// Sizes of one forward pass.
public struct ForwardShape: Equatable, Sendable {
    public let samples: Int, padded: Int, frames: Int, chunks: Int
}

// MARK: - Model

/// A loaded DPMamba model: config plus weights. Immutable and shareable across threads.
public final class DPMamba: @unchecked Sendable {
    public let config: ModelConfig
    public let weights: DPMambaWeights
    /// The `name` metadata entry, if the file had one.
    public let name: String?
    /// The metadata of the file it came from.
    public let metadata: [String: String]

    public init(config: ModelConfig, weights: DPMambaWeights, name: String? = nil, metadata: [String: String] = [:]) {
        self.config = config
        self.weights = weights
        self.name = name
        self.metadata = metadata
    }

    /// Loads a model from a safetensors file with the config in `__metadata__["config"]`.
    ///
    /// `ignoringPrefixes` lets extra tensors through (parity fixtures carry `io.*`); otherwise any
    /// tensor the config does not use is an error.
    public convenience init(path: String, ignoringPrefixes: [String] = []) throws {
        let file = try SafeTensorsFile(path: path)
        try self.init(file: file, ignoringPrefixes: ignoringPrefixes)
    }

    public convenience init(file: SafeTensorsFile, ignoringPrefixes: [String] = []) throws {
        guard let json = file.metadata["config"] else { throw ModelError.badConfig("__metadata__ has no \"config\" entry") }
        let config = try ModelConfig.decode(json: json)
        let weights = try DPMambaWeights(WeightReader(file, ignoringPrefixes: ignoringPrefixes), config: config)
        self.init(config: config, weights: weights, name: file.metadata["name"], metadata: file.metadata)
    }

    /// Sizes the forward pass uses for `samples` input samples.
    public func shape(samples t: Int) -> ForwardShape {
        let ks = config.kernelSize, st = config.stride, k = config.chunkSize, h = config.hopSize
        var tp = max(t, ks)
        let rem = (tp - ks) % st
        if rem != 0 { tp += st - rem }
        let l = (tp - ks) / st + 1
        let gap = k - (h + l % k) % k
        let lp = l + gap + 2 * h
        return ForwardShape(samples: t, padded: tp, frames: l, chunks: 2 * (lp - h) / k)
    }

    // MARK: Forward

    /// Separates `samples` samples at the model's rate into `C` signals of the same length,
    /// written to `outputs[c]` (each at least `samples` floats).
    ///
    /// `samples == 0` writes nothing. `trace`, when given, receives each named stage's buffer
    /// (valid only during the call).
    @_optimize(speed)
    public func forward(_ input: UnsafePointer<Float>, samples t: Int, scratch: DPMambaScratch,
                        outputs: [UnsafeMutablePointer<Float>],
                        trace: ((ForwardStage, UnsafeBufferPointer<Float>) -> Void)? = nil) {
        precondition(outputs.count == config.numSpeakers, "need \(config.numSpeakers) output buffers")
        guard t > 0 else { return }
        let n = config.nFilters, c = config.numSpeakers, k = config.chunkSize, h = config.hopSize
        let sh = shape(samples: t)
        let l = sh.frames, s = sh.chunks
        let wts = weights

        // 1. Pad to Tp.
        let x = scratch.padded.reserve(sh.padded)                  // [Tp]
        x.update(from: input, count: t)
        (x + t).update(repeating: 0, count: sh.padded - t)

        // 2. Encoder.
        let w = scratch.w.reserve(l * n)                           // [L, N]
        wts.encoder.forward(x, samples: sh.padded, scratch: scratch.frames, into: w)
        trace?(.encoder, UnsafeBufferPointer(start: w, count: l * n))

        // 3.1–3.2 GroupNorm, conv_in.
        let v = scratch.v.reserve(l * n)                           // [L, N]
        groupNorm1(w, v, rows: l, n: n, weight: wts.normWeight.pointer, bias: wts.normBias.pointer, eps: config.gnEps)
        let v2 = scratch.ola.reserve(l * n)                        // [L, N] (borrowed)
        linear(v, ldx: n, rows: l, weight: wts.convIn, bias: nil, inFeatures: n, outFeatures: n, into: v2, ldy: n)

        // 3.3 Chunk: chunk j holds padded frames [j·H, j·H + K) = original frames j·H − H + k.
        let u = scratch.u.reserve(s * k * n)                       // [S, K, N]
        for j in 0..<s {
            for kk in 0..<k {
                let f = j * h + kk - h
                let dst = u + (j * k + kk) * n
                if f >= 0 && f < l { dst.update(from: v2 + f * n, count: n) } else { dst.update(repeating: 0, count: n) }
            }
        }
        trace?(.chunked, UnsafeBufferPointer(start: u, count: s * k * n))

        // 3.4 Dual-path blocks.
        for (i, block) in wts.blocks.enumerated() {
            block.forward(u, chunks: s, chunkLength: k, scratch: scratch.blocks)
            trace?(.block(i), UnsafeBufferPointer(start: u, count: s * k * n))
        }

        // 3.5 PReLU (one shared slope).
        let slope = wts.prelu.pointer[0]
        preluInPlace(u, count: s * k * n, slope: slope)

        // 3.6 conv_out to C·N channels (speaker-major: channel c·N + n).
        let head = scratch.head.reserve(s * k * c * n)             // [S, K, C·N]
        linear(u, ldx: n, rows: s * k, weight: wts.convOut, bias: wts.convOutBias,
               inFeatures: n, outFeatures: c * n, into: head, ldy: c * n)

        // 3.7 Overlap-add chunks back to frames, keep [H, H + L).
        let ola = scratch.ola.reserve(c * l * n)                   // [C, L, N]
        ola.update(repeating: 0, count: c * l * n)
        for j in 0..<s {
            for kk in 0..<k {
                let f = j * h + kk - h
                guard f >= 0 && f < l else { continue }
                let src = head + (j * k + kk) * c * n
                for spk in 0..<c {
                    let dst = ola + (spk * l + f) * n, sp = src + spk * n
                    var q = 0
                    while q + 8 <= n { dst.setVec8(q, dst.vec8(q) + sp.vec8(q)); q += 8 }
                    while q < n { dst[q] += sp[q]; q += 1 }
                }
            }
        }

        // 3.8 tanh(output) · sigmoid(output_gate); 3.9 end_conv + ReLU.
        let rows = c * l
        let gated = scratch.gated.reserve(rows * n)                // [C·L, N]
        let g = scratch.gate.reserve(rows * n)                     // [C·L, N]
        linear(ola, ldx: n, rows: rows, weight: wts.output, bias: wts.outputBias,
               inFeatures: n, outFeatures: n, into: gated, ldy: n)
        linear(ola, ldx: n, rows: rows, weight: wts.outputGate, bias: wts.outputGateBias,
               inFeatures: n, outFeatures: n, into: g, ldy: n)
        for i in 0..<(rows * n) { gated[i] = tanhf(gated[i]) / (1 + expf(-g[i])) }
        let masks = ola                                            // [C, L, N] (overwrites the OLA sums)
        linear(gated, ldx: n, rows: rows, weight: wts.endConv, bias: nil, inFeatures: n, outFeatures: n, into: masks, ldy: n)
        reluInPlace(masks, count: rows * n)
        trace?(.masks, UnsafeBufferPointer(start: masks, count: rows * n))

        // 4. Decoder on masks · w, trimmed to T.
        let masked = gated                                         // [L, N] per speaker (reused)
        let decoded = scratch.decoded.reserve((l - 1) * config.stride + config.kernelSize)   // [Tp]
        for spk in 0..<c {
            let m = masks + spk * l * n
            for i in 0..<(l * n) { masked[i] = m[i] * w[i] }
            wts.decoder.forward(masked, frames: l, scratch: scratch.frames, into: decoded)
            outputs[spk].update(from: decoded, count: t)
        }
        if let trace {
            var all = [Float](repeating: 0, count: c * t)
            for spk in 0..<c { for i in 0..<t { all[spk * t + i] = outputs[spk][i] } }
            all.withUnsafeBufferPointer { trace(.output, $0) }
        }
    }

    /// Array convenience: separates `input` into `C` arrays of the same length.
    public func separate(_ input: [Float], scratch: DPMambaScratch? = nil) -> [[Float]] {
        let c = config.numSpeakers
        let scr = scratch ?? DPMambaScratch()
        let bufs = (0..<c).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: max(input.count, 1)) }
        defer { bufs.forEach { $0.deallocate() } }
        input.withUnsafeBufferPointer { p in
            if let base = p.baseAddress { forward(base, samples: input.count, scratch: scr, outputs: bufs) }
        }
        return bufs.map { Array(UnsafeBufferPointer(start: $0, count: input.count)) }
    }
}
