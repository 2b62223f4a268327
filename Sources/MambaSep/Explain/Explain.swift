// `explain`: one window's real forward pass with a scan recorder on chosen BiMamba layers, turning
// their Δ, B and C into hidden-attention maps (HiddenAttention.swift), next to the separated
// signals of the same pass.
//
// Glossary (docs/MODEL.md): `T` samples, `L` encoder frames, `K` chunk length, `H` hop (K/2),
// `S` chunks, `C` speakers, `E` Mamba inner width, `L'` the length of a path's sequences (`K`
// intra, `S` inter).

import Foundation

// MARK: - Errors

/// A request `explain` cannot satisfy; `description` is one line.
public enum ExplainError: Error, CustomStringConvertible, Equatable {
    case noSamples
    case noLayers
    case noSuchBlock(Int, blocks: Int)
    case notMamba(MambaLayerID)
    case noSuchChunk(Int, chunks: Int)
    case badChannels(lower: Int, upper: Int, channels: Int)
    case badStart(Double, length: Double)
    case badDuration(Double)
    case beyondEnd(start: Double, duration: Double, length: Double)
    case tooLong(Double, limit: Double)

    public var description: String {
        func s(_ v: Double) -> String { String(format: "%.3g s", v) }
        switch self {
        case .noSamples: return "no audio to explain"
        case .noLayers: return "no layer chosen"
        case let .noSuchBlock(b, n): return "block \(b) does not exist: the model has \(n) blocks (0-\(n - 1))"
        case let .notMamba(l): return "\(l) is an S4D mixer; hidden attention needs a Mamba layer"
        case let .noSuchChunk(c, n): return "chunk \(c) does not exist: this excerpt has \(n) chunks (0-\(n - 1))"
        case let .badChannels(lo, hi, n): return "channels \(lo)-\(hi) are not within 0-\(n - 1)"
        case let .badStart(t, len): return "start \(s(t)) is outside the audio (0 to \(s(len)))"
        case let .badDuration(d): return "duration \(s(d)) must be positive"
        case let .beyondEnd(t, d, len): return "start \(s(t)) + duration \(s(d)) runs past the end of the audio (\(s(len)))"
        case let .tooLong(d, lim): return "duration \(s(d)) is longer than one explained window may be (\(s(lim)))"
        }
    }
}

extension ExplainError: LocalizedError {
    public var errorDescription: String? { description }
}

// MARK: - Attention maps

/// The hidden attention of one BiMamba layer, averaged over a range of channels (and, on the
/// inter path, over its `K` sequences). Row `t` is the output step, column `s` the input step.
public struct AttentionMap: Sendable {
    public let layer: MambaLayerID
    /// `L'`: positions along the sequence (`K` frames intra, `S` chunks inter).
    public let length: Int
    /// `[L', L']` mean α of the forward direction: `s ≤ t`, zero above the diagonal.
    public let forward: [Float]
    /// `[L', L']` mean α of the backward direction: `s ≥ t`, zero below the diagonal.
    public let backward: [Float]
    /// The channels averaged (of `E`).
    public let channels: ClosedRange<Int>
    /// Intra: the chunk shown; inter: nil.
    public let chunk: Int?
    /// Seconds from the start of the audio to position 0 (a frame's start intra, chunk 0's centre
    /// frame inter; negative or past the end on the padding), and between positions.
    public let startSeconds: Double
    public let stepSeconds: Double

    /// One matrix: the forward direction on and below the diagonal, the backward one above.
    public var combined: [Float] {
        var m = forward
        for t in 0..<length { for s in (t + 1)..<max(t + 1, length) { m[t * length + s] = backward[t * length + s] } }
        return m
    }

    /// Seconds of position `i`.
    public func time(_ i: Int) -> Double { startSeconds + Double(i) * stepSeconds }
}

/// What one explained forward pass produced.
public struct Explanation: Sendable {
    /// The separated signals of the pass, `[C][T]`.
    public let estimates: [[Float]]
    /// One map per requested layer, in the order asked.
    public let maps: [AttentionMap]
    public let shape: ForwardShape
}

// MARK: - API

/// Hidden-attention maps and the forward pass they come from.
public enum Explain {
    /// The longest excerpt one explained pass takes, in seconds (the inter path's maps grow with
    /// the square of the chunk count).
    public static let maxDuration: Double = 30

    /// Runs `model` once on `samples` (at the model's rate) with a recorder on `layers` and
    /// returns the separated signals and each layer's hidden-attention map.
    ///
    /// `chunk`: the chunk an intra map shows (default: the middle one, `S/2`). `channels`: the
    /// channels averaged (default all `E`). Invalid choices throw `ExplainError` before any work;
    /// a non-finite separated sample (the model overflowed) throws `SeparationError.nonFiniteOutput`.
    public static func run(model: DPMamba, samples: [Float], layers: [MambaLayerID], chunk: Int? = nil,
                           channels: ClosedRange<Int>? = nil, threads: Int = 1) throws -> Explanation {
        let cfg = model.config
        guard !samples.isEmpty else { throw ExplainError.noSamples }
        guard !layers.isEmpty else { throw ExplainError.noLayers }
        let shape = model.shape(samples: samples.count)
        for l in layers {
            guard l.block >= 0 && l.block < cfg.numBlocks else { throw ExplainError.noSuchBlock(l.block, blocks: cfg.numBlocks) }
            guard (l.path == .intra ? cfg.intraMixer : cfg.interMixer) == .mamba else { throw ExplainError.notMamba(l) }
        }
        let chosenChunk = chunk ?? shape.chunks / 2
        if layers.contains(where: { $0.path == .intra }) {
            guard chosenChunk >= 0 && chosenChunk < shape.chunks else { throw ExplainError.noSuchChunk(chosenChunk, chunks: shape.chunks) }
        }
        let e = cfg.innerWidth
        let range = channels ?? 0...(e - 1)
        guard range.lowerBound >= 0 && range.upperBound < e else {
            throw ExplainError.badChannels(lower: range.lowerBound, upper: range.upperBound, channels: e)
        }

        let recorder = AttentionRecorder(layers: layers, chunk: chosenChunk, channels: range)
        let separator = Separator(model: model, threads: threads)
        let estimates = separator.separate(samples, recorder: recorder)
        // A model that overflowed is an error, as in `separate` (not a picture of NaNs).
        for est in estimates {
            if let i = est.firstIndex(where: { !$0.isFinite }) {
                throw SeparationError.nonFiniteOutput(second: Double(i) / Double(cfg.sampleRate),
                                                      inputPeak: samples.map { abs($0) }.max() ?? 0)
            }
        }
        let frameSeconds = Double(cfg.stride) / Double(cfg.sampleRate)
        let maps = layers.map { l -> AttentionMap in
            let intra = l.path == .intra
            let acc = recorder.accumulators[l] ?? .init(length: intra ? cfg.chunkSize : shape.chunks)
            let count = Float(range.count * (intra ? 1 : cfg.chunkSize))
            return AttentionMap(layer: l, length: acc.length,
                                forward: acc.forward.map { $0 / count }, backward: acc.backward.map { $0 / count },
                                channels: range, chunk: intra ? chosenChunk : nil,
                                startSeconds: intra ? Double(chosenChunk * cfg.hopSize - cfg.hopSize) * frameSeconds : 0,
                                stepSeconds: intra ? frameSeconds : Double(cfg.hopSize) * frameSeconds)
        }
        return Explanation(estimates: estimates, maps: maps, shape: shape)
    }

    /// The hidden-attention map of one layer for `samples` (at the model's rate): `run` for one layer.
    public static func hiddenAttention(model: DPMamba, samples: [Float], layer: MambaLayerID, chunk: Int? = nil,
                                       channels: ClosedRange<Int>? = nil) throws -> AttentionMap {
        try run(model: model, samples: samples, layers: [layer], chunk: chunk, channels: channels).maps[0]
    }

    /// The samples of `audio` from `start` seconds for `duration` seconds (default: to the end,
    /// at most `maxDuration`; `capped` says when that limit cut it).
    public static func excerpt(_ audio: MonoAudio, start: Double = 0, duration: Double? = nil,
                               maxDuration: Double = Explain.maxDuration) throws -> (samples: [Float], capped: Bool) {
        let length = audio.duration
        guard !audio.samples.isEmpty else { throw ExplainError.noSamples }
        guard start.isFinite, start >= 0, start < length else { throw ExplainError.badStart(start, length: length) }
        var capped = false
        let d: Double
        if let duration {
            guard duration.isFinite, duration > 0 else { throw ExplainError.badDuration(duration) }
            guard duration <= maxDuration else { throw ExplainError.tooLong(duration, limit: maxDuration) }
            // Half a sample of slack for durations typed from a rounded length.
            guard start + duration <= length + 0.5 / Double(audio.sampleRate) else {
                throw ExplainError.beyondEnd(start: start, duration: duration, length: length)
            }
            d = duration
        } else {
            capped = length - start > maxDuration
            d = min(length - start, maxDuration)
        }
        let first = Int((start * Double(audio.sampleRate)).rounded())
        let count = min(audio.samples.count - first, Int((d * Double(audio.sampleRate)).rounded()))
        guard count > 0 else { throw ExplainError.badDuration(d) }
        return (Array(audio.samples[first..<(first + count)]), capped)
    }
}

// MARK: - Recorder

/// Sums the hidden attention of the recorded layers as the forward pass hands over their scans:
/// intra, the chosen chunk's sequence; inter, every sequence. Computed on the worker thread that
/// runs each group; the sums are merged under a lock.
final class AttentionRecorder: ScanRecorder, @unchecked Sendable {
    final class Sums {
        let length: Int
        var forward: [Float], backward: [Float]      // [L', L'] each
        init(length: Int) {
            self.length = length
            forward = [Float](repeating: 0, count: length * length)
            backward = forward
        }
    }

    let layers: Set<MambaLayerID>
    let chunk: Int
    let channels: ClosedRange<Int>
    private(set) var accumulators: [MambaLayerID: Sums] = [:]
    private let lock = NSLock()

    init(layers: [MambaLayerID], chunk: Int, channels: ClosedRange<Int>) {
        self.layers = Set(layers)
        self.chunk = chunk
        self.channels = channels
    }

    func records(_ layer: MambaLayerID) -> Bool { layers.contains(layer) }

    func record(_ group: ScanGroup) {
        let t = group.length
        let wanted = group.layer.path == .intra
            ? (chunk >= group.firstSequence && chunk < group.firstSequence + group.sequences ? [chunk - group.firstSequence] : [])
            : Array(0..<group.sequences)
        guard !wanted.isEmpty else { return }
        var sum = [Float](repeating: 0, count: t * t)                              // [L', L']
        let scratch = AttentionScratch()
        sum.withUnsafeMutableBufferPointer { out in
            for i in wanted {
                hiddenAttention(group.operands(i), length: t, channels: group.channels, states: group.states,
                                reverse: group.reverse, channelRange: channels.lowerBound..<(channels.upperBound + 1),
                                scratch: scratch, accumulatingInto: out.baseAddress!)
            }
        }
        lock.lock()
        defer { lock.unlock() }
        let acc = accumulators[group.layer] ?? Sums(length: t)
        accumulators[group.layer] = acc
        if group.reverse {
            for i in 0..<(t * t) { acc.backward[i] += sum[i] }
        } else {
            for i in 0..<(t * t) { acc.forward[i] += sum[i] }
        }
    }
}
