// The DPMamba separation network (docs/MODEL.md): weights, scratch and the forward pass.
//
// Glossary (docs/MODEL.md): `T` input samples, `Tp` padded samples, `N` filters (model width),
// `L` encoder frames, `K` chunk length, `H` hop (K/2), `S` chunks, `C` speakers, `Kw` encoder
// kernel size. Activations are channels last: encoder output `[L, N]`, chunked `[S, K, N]`,
// masks `[C, L, N]`.
//
// Like llama2.c the model is split into a config (`ModelConfig`), read-only weights
// (`DPMambaWeights`) and mutable buffers (`DPMambaScratch`), so one set of weights can serve
// several threads, each with its own scratch.

import Foundation

// MARK: - Weights

/// All parameters of a DPMamba model, with the state-dict key of each.
public struct DPMambaWeights: Sendable {
    public let encoder: EncoderWeights       // encoder.conv.weight                [N, 1, Kw]
    public let normWeight: Tensor            // masker.norm.weight                 [N]
    public let normBias: Tensor              // masker.norm.bias                   [N]
    public let convIn: Tensor                // masker.conv_in.weight              [N, N, 1]
    public let blocks: [DualPathBlockWeights] // masker.blocks.{i}.*
    public let prelu: Tensor                 // masker.prelu.weight                [1]
    public let convOut: Tensor               // masker.conv_out.weight             [C·N, N, 1]
    public let convOutBias: Tensor           // masker.conv_out.bias               [C·N]
    public let output: Tensor                // masker.output.weight               [N, N, 1]
    public let outputBias: Tensor            // masker.output.bias                 [N]
    public let outputGate: Tensor            // masker.output_gate.weight          [N, N, 1]
    public let outputGateBias: Tensor        // masker.output_gate.bias            [N]
    public let endConv: Tensor               // masker.end_conv.weight             [N, N, 1]
    public let decoder: DecoderWeights       // decoder.conv.weight                [N, 1, Kw]
    /// Number of scalar parameters read.
    public let parameterCount: Int

    /// Reads every tensor the config requires; `reader.finish()` is called, so leftovers
    /// (other than the reader's ignored prefixes) are an error.
    public init(_ r: WeightReader, config: ModelConfig) throws {
        let n = config.nFilters, c = config.numSpeakers
        encoder = try EncoderWeights(r, config: config)
        normWeight = try r.take("masker.norm.weight", [n])
        normBias = try r.take("masker.norm.bias", [n])
        convIn = try r.take("masker.conv_in.weight", [n, n, 1])
        blocks = try (0..<config.numBlocks).map { try DualPathBlockWeights(r, index: $0, config: config) }
        prelu = try r.take("masker.prelu.weight", [1])
        convOut = try r.take("masker.conv_out.weight", [c * n, n, 1])
        convOutBias = try r.take("masker.conv_out.bias", [c * n])
        output = try r.take("masker.output.weight", [n, n, 1])
        outputBias = try r.take("masker.output.bias", [n])
        outputGate = try r.take("masker.output_gate.weight", [n, n, 1])
        outputGateBias = try r.take("masker.output_gate.bias", [n])
        endConv = try r.take("masker.end_conv.weight", [n, n, 1])
        decoder = try DecoderWeights(r, config: config)
        try r.finish()
        parameterCount = r.parameterCount
    }
}

// MARK: - Scratch

/// Buffers reused across forward passes (grown to the largest window seen), one quantity each.
/// Not thread-safe.
public final class DPMambaScratch {
    let padded = ScratchBuffer()             // [Tp] the input, zero-padded
    let encoderFrames = ScratchBuffer()      // [L, Kw] the encoder's im2col rows
    let encoded = ScratchBuffer()            // [L, N] w = ReLU(encoder(x))
    let normed = ScratchBuffer()             // [L, N] GroupNorm(w)
    let projected = ScratchBuffer()          // [L, N] conv_in(normed)
    let chunked = ScratchBuffer()            // [S, K, N] chunks, then each block's output, then PReLU
    let head = ScratchBuffer()               // [S, K, C·N] conv_out(chunked)
    let summed = ScratchBuffer()             // [C, L, N] head overlap-added back to frames
    let gated = ScratchBuffer()              // [C·L, N] output(summed), then tanh(·)·sigmoid(gate)
    let gate = ScratchBuffer()               // [C·L, N] output_gate(summed)
    let masks = ScratchBuffer()              // [C, L, N] ReLU(end_conv(gated)), then masks · w
    let decoderFrames = ScratchBuffer()      // [L, Kw] one speaker's synthesised rows
    let decoded = ScratchBuffer()            // [Tp] one speaker's decoded samples
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
    /// (valid only during the call); `recorder` the scan operands of the Mamba layers it records.
    @_optimize(speed)
    public func forward(_ input: UnsafePointer<Float>, samples t: Int, scratch: DPMambaScratch,
                        outputs: [UnsafeMutablePointer<Float>],
                        trace: ((ForwardStage, UnsafeBufferPointer<Float>) -> Void)? = nil,
                        recorder: ScanRecorder? = nil) {
        precondition(outputs.count == config.numSpeakers, "need \(config.numSpeakers) output buffers")
        guard t > 0 else { return }
        let n = config.nFilters, c = config.numSpeakers, k = config.chunkSize
        let sh = shape(samples: t)
        let l = sh.frames, s = sh.chunks
        func traced(_ stage: ForwardStage, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
            trace?(stage, UnsafeBufferPointer(start: p, count: count))
        }

        let w = encode(input, shape: sh, scratch: scratch)                            // [L, N]
        traced(.encoder, w, l * n)
        let u = chunk(w, shape: sh, scratch: scratch)                                 // [S, K, N]
        traced(.chunked, u, s * k * n)
        for (i, block) in weights.blocks.enumerated() {
            block.forward(u, chunks: s, config: config, scratch: scratch.blocks, recorder: recorder, index: i)
            traced(.block(i), u, s * k * n)
        }
        let masks = maskHead(u, shape: sh, scratch: scratch)                          // [C, L, N]
        traced(.masks, masks, c * l * n)
        decode(masks, encoded: w, shape: sh, scratch: scratch, outputs: outputs)
        if let trace {
            var all = [Float](repeating: 0, count: c * t)                              // [C, T]
            for spk in 0..<c { for i in 0..<t { all[spk * t + i] = outputs[spk][i] } }
            all.withUnsafeBufferPointer { trace(.output, $0) }
        }
    }

    // MARK: Stages

    /// 1–2. Pads the input to Tp and encodes it: `w [L, N]`.
    @_optimize(speed)
    private func encode(_ input: UnsafePointer<Float>, shape sh: ForwardShape, scratch: DPMambaScratch) -> UnsafeMutablePointer<Float> {
        let x = scratch.padded.reserve(sh.padded)                      // [Tp]
        x.update(from: input, count: sh.samples)
        (x + sh.samples).update(repeating: 0, count: sh.padded - sh.samples)
        let w = scratch.encoded.reserve(sh.frames * config.nFilters)   // [L, N]
        weights.encoder.forward(x, samples: sh.padded, config: config, frames: scratch.encoderFrames, into: w)
        return w
    }

    /// 3.1–3.3. GroupNorm, conv_in, then chunking: chunk j holds padded frames [j·H, j·H + K) =
    /// original frames j·H − H + k (zeros outside). Returns `u [S, K, N]`.
    @_optimize(speed)
    private func chunk(_ w: UnsafePointer<Float>, shape sh: ForwardShape, scratch: DPMambaScratch) -> UnsafeMutablePointer<Float> {
        let n = config.nFilters, k = config.chunkSize, h = config.hopSize, l = sh.frames, s = sh.chunks
        let v = scratch.normed.reserve(l * n)                          // [L, N]
        groupNorm1(w, v, rows: l, n: n, weight: weights.normWeight.pointer, bias: weights.normBias.pointer, eps: config.gnEps)
        let v2 = scratch.projected.reserve(l * n)                      // [L, N]
        linear(v, ldx: n, rows: l, weight: weights.convIn, bias: nil, inFeatures: n, outFeatures: n, into: v2, ldy: n)
        let u = scratch.chunked.reserve(s * k * n)                     // [S, K, N]
        for j in 0..<s {
            for kk in 0..<k {
                let f = j * h + kk - h
                let dst = u + (j * k + kk) * n
                if f >= 0 && f < l { dst.update(from: v2 + f * n, count: n) } else { dst.update(repeating: 0, count: n) }
            }
        }
        return u
    }

    /// 3.5–3.9. PReLU, conv_out to C·N channels (speaker-major: channel c·N + n), overlap-add
    /// back to frames [H, H + L), tanh(output)·sigmoid(output_gate), end_conv + ReLU. Returns
    /// the masks `[C, L, N]`.
    @_optimize(speed)
    private func maskHead(_ u: UnsafeMutablePointer<Float>, shape sh: ForwardShape, scratch: DPMambaScratch) -> UnsafeMutablePointer<Float> {
        let n = config.nFilters, c = config.numSpeakers, k = config.chunkSize, h = config.hopSize
        let l = sh.frames, s = sh.chunks, rows = c * l
        preluInPlace(u, count: s * k * n, slope: weights.prelu.pointer[0])
        let head = scratch.head.reserve(s * k * c * n)                 // [S, K, C·N]
        linear(u, ldx: n, rows: s * k, weight: weights.convOut, bias: weights.convOutBias,
               inFeatures: n, outFeatures: c * n, into: head, ldy: c * n)
        let summed = scratch.summed.reserve(c * l * n)                 // [C, L, N]
        summed.update(repeating: 0, count: c * l * n)
        for j in 0..<s {
            for kk in 0..<k {
                let f = j * h + kk - h
                guard f >= 0 && f < l else { continue }
                let src = head + (j * k + kk) * c * n
                for spk in 0..<c { addInPlace(summed + (spk * l + f) * n, src + spk * n, count: n) }
            }
        }
        let gated = scratch.gated.reserve(rows * n)                    // [C·L, N]
        let g = scratch.gate.reserve(rows * n)                         // [C·L, N]
        linear(summed, ldx: n, rows: rows, weight: weights.output, bias: weights.outputBias,
               inFeatures: n, outFeatures: n, into: gated, ldy: n)
        linear(summed, ldx: n, rows: rows, weight: weights.outputGate, bias: weights.outputGateBias,
               inFeatures: n, outFeatures: n, into: g, ldy: n)
        for i in 0..<(rows * n) { gated[i] = tanhf(gated[i]) / (1 + expf(-g[i])) }
        let masks = scratch.masks.reserve(rows * n)                    // [C, L, N]
        linear(gated, ldx: n, rows: rows, weight: weights.endConv, bias: nil, inFeatures: n, outFeatures: n, into: masks, ldy: n)
        reluInPlace(masks, count: rows * n)
        return masks
    }

    /// 4. Applies each speaker's mask to w in place (`masks` then holds masks · w) and decodes
    /// it, trimmed to T, into `outputs`.
    @_optimize(speed)
    private func decode(_ masks: UnsafeMutablePointer<Float>, encoded w: UnsafePointer<Float>, shape sh: ForwardShape,
                        scratch: DPMambaScratch, outputs: [UnsafeMutablePointer<Float>]) {
        let n = config.nFilters, l = sh.frames
        let decoded = scratch.decoded.reserve((l - 1) * config.stride + config.kernelSize)   // [Tp]
        for spk in 0..<config.numSpeakers {
            let masked = masks + spk * l * n                           // [L, N]
            for i in 0..<(l * n) { masked[i] *= w[i] }
            weights.decoder.forward(masked, frames: l, config: config, scratch: scratch.decoderFrames, into: decoded)
            outputs[spk].update(from: decoded, count: sh.samples)
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
