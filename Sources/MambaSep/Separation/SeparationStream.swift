// The whole separation pipeline for a stream of samples at any rate, and for files:
// resample in → windower → resample out → exact length, all block by block.
//
// Glossary: `Ni` input samples (at the input rate), `C` speakers.

import Foundation

// MARK: - Settings

/// Window sizes for long inputs.
public struct WindowSettings: Equatable, Sendable {
    /// Window length in seconds (inputs up to this long are one window).
    public var windowSeconds: Double
    /// Overlap between consecutive windows, in seconds.
    public var overlapSeconds: Double

    /// Defaults chosen by measurement (BENCHMARKS.md): 16 s windows, 1 s overlap.
    public static let standard = WindowSettings(windowSeconds: 16, overlapSeconds: 1)

    public init(windowSeconds: Double, overlapSeconds: Double) {
        self.windowSeconds = windowSeconds
        self.overlapSeconds = overlapSeconds
    }

    /// Window and overlap in samples at `rate`; throws `SeparationError.badWindow` unless
    /// 0 ≤ overlap < window and the window is at least 0.1 s.
    public func samples(at rate: Int) throws -> (window: Int, overlap: Int) {
        guard windowSeconds.isFinite, overlapSeconds.isFinite, windowSeconds >= 0.1, overlapSeconds >= 0,
              overlapSeconds < windowSeconds else {
            throw SeparationError.badWindow("window \(windowSeconds) s with overlap \(overlapSeconds) s: need a window of at least 0.1 s longer than the overlap")
        }
        let w = Int((windowSeconds * Double(rate)).rounded())
        let o = Int((overlapSeconds * Double(rate)).rounded())
        return (w, min(o, w - 1))
    }
}

/// Errors of the separation pipeline (audio and model errors pass through unchanged).
public enum SeparationError: Error, CustomStringConvertible, Equatable {
    case badWindow(String)
    case outputCount(expected: Int, got: Int)

    public var description: String {
        switch self {
        case let .badWindow(s): return "invalid window settings: \(s)"
        case let .outputCount(e, g): return "need \(e) output paths (one per speaker), got \(g)"
        }
    }
}

// MARK: - Stream

/// Separates a mono stream at `inputRate` block by block, returning separated blocks at the
/// same rate; over the whole run each speaker gets exactly as many samples as were pushed.
///
/// This is the engine behind both `separate` (files) and `stream` (stdin). Memory is bounded by
/// the window size, not the input length. Not thread-safe.
public final class SeparationStream {
    public let inputRate: Int
    public let modelRate: Int
    public let speakers: Int
    private let windower: Windower
    private let resampleIn: Resampler?
    /// Samples pushed (input rate).
    public private(set) var samplesIn = 0
    /// Output back at the input rate, released so the total length equals the input's.
    private var output: RateMatchedOutput
    private var finished = false

    public init(separator: WindowSeparator, modelRate: Int, inputRate: Int, settings: WindowSettings = .standard) throws {
        let (w, o) = try settings.samples(at: modelRate)
        self.inputRate = inputRate
        self.modelRate = modelRate
        speakers = separator.speakers
        windower = Windower(separator: separator, window: w, overlap: o)
        if inputRate != modelRate {
            resampleIn = try Resampler(from: inputRate, to: modelRate)
        } else {
            resampleIn = nil
        }
        output = try RateMatchedOutput(speakers: separator.speakers, modelRate: modelRate, inputRate: inputRate,
                                       holdBack: 256, lowLatency: false)
    }

    /// Windows separated so far.
    public var windowsProcessed: Int { windower.windowsProcessed }

    /// Adds input samples; returns the separated samples that are final (may be empty arrays).
    public func push(_ block: [Float]) throws -> [[Float]] {
        precondition(!finished, "push after finish")
        samplesIn += block.count
        let x = try resampleIn?.process(block) ?? block
        return try output.deliver(windower.push(x), samplesIn: samplesIn, last: false)
    }

    /// Ends the input; returns the remaining separated samples.
    public func finish() throws -> [[Float]] {
        precondition(!finished, "finish called twice")
        finished = true
        var outs = [[Float]](repeating: [], count: speakers)
        if let r = resampleIn {
            let rest = windower.push(try r.flush())
            for c in 0..<speakers { outs[c] += rest[c] }
        }
        let last = windower.finish()
        for c in 0..<speakers { outs[c] += last[c] }
        return try output.deliver(outs, samplesIn: samplesIn, last: true)
    }
}

// MARK: - Output at the input rate

/// Brings separated model-rate blocks back to the input rate and releases them so that the total
/// output length equals the input length exactly; shared by `SeparationStream` and
/// `StreamingSeparator`.
///
/// While input is still arriving, all but `holdBack` samples per speaker are released (and never
/// more than came in); at the end the remainder is released, zero-padded or cut to the input
/// length.
struct RateMatchedOutput {
    let speakers: Int
    private let resamplers: [Resampler]?
    private let holdBack: Int
    /// Per-speaker output not yet released (the speakers stay in step).
    private(set) var held: [[Float]]
    /// Samples released per speaker (input rate).
    private(set) var samplesOut = 0

    init(speakers: Int, modelRate: Int, inputRate: Int, holdBack: Int, lowLatency: Bool) throws {
        self.speakers = speakers
        self.holdBack = holdBack
        resamplers = modelRate == inputRate ? nil : try (0..<speakers).map { _ in
            try Resampler(from: modelRate, to: inputRate, lowLatency: lowLatency)
        }
        held = [[Float]](repeating: [], count: speakers)
    }

    /// Samples held per speaker, summed over speakers.
    var heldSamples: Int { held.reduce(0) { $0 + $1.count } }

    /// Takes model-rate blocks (one per speaker); returns what can be released at the input rate.
    mutating func deliver(_ modelRateBlocks: [[Float]], samplesIn: Int, last: Bool) throws -> [[Float]] {
        var blocks = modelRateBlocks
        if let rs = resamplers {
            for c in 0..<speakers {
                blocks[c] = try rs[c].process(blocks[c])
                if last { blocks[c] += try rs[c].flush() }
            }
        }
        for c in 0..<speakers { held[c] += blocks[c] }
        let release: Int
        if last {
            release = samplesIn - samplesOut
            for c in 0..<speakers where held[c].count < release {
                held[c] += [Float](repeating: 0, count: release - held[c].count)
            }
        } else {
            let available = held.map(\.count).min() ?? 0
            release = min(max(0, available - holdBack), samplesIn - samplesOut)
        }
        var out = [[Float]](repeating: [], count: speakers)
        guard release > 0 else { return out }
        for c in 0..<speakers {
            out[c] = Array(held[c][0..<release])
            held[c].removeFirst(release)
        }
        samplesOut += release
        if last { held = [[Float]](repeating: [], count: speakers) }
        return out
    }
}

// MARK: - Files

/// Separates the audio file at `path` into `outputs` (one path per speaker), written at the
/// input's sample rate and exactly its length, reading, resampling and writing block by block.
///
/// Output files appear only when complete (temporary file + rename); on error none is left
/// behind. `progress` receives the fraction of input read (0…1) when the length is known.
/// Returns, per output, how many samples lay beyond full scale and were clipped (integer
/// formats such as the default 16-bit WAV; always 0 for `.wavFloat`).
@discardableResult
public func separateFile(_ path: String, outputs: [String], separator: WindowSeparator, modelRate: Int,
                         settings: WindowSettings = .standard, format: AudioFileFormat = .wav16,
                         blockFrames: Int = 1 << 16, progress: ((Double) -> Void)? = nil) throws -> [Int] {
    guard outputs.count == separator.speakers else {
        throw SeparationError.outputCount(expected: separator.speakers, got: outputs.count)
    }
    let reader = try AudioReader(path: path)
    defer { reader.close() }
    let stream = try SeparationStream(separator: separator, modelRate: modelRate, inputRate: reader.sampleRate, settings: settings)
    let writers = try outputs.map { try AudioWriter(path: $0, sampleRate: reader.sampleRate, format: format) }
    do {
        func write(_ blocks: [[Float]]) throws {
            for (w, b) in zip(writers, blocks) where !b.isEmpty { try w.write(interleaved: b) }
        }
        while true {
            let block = try reader.read(maxFrames: blockFrames)
            if block.isEmpty { break }
            try write(stream.push(block))
            if let total = reader.frameCount, total > 0 { progress?(Double(reader.framesRead) / Double(total)) }
        }
        try write(stream.finish())
        for w in writers { try w.finish() }
        progress?(1)
        return writers.map(\.clippedSamples)
    } catch {
        for w in writers { w.cancel() }
        throw error
    }
}
