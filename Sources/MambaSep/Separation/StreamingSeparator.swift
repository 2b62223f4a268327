// Low-latency separation of a live stream: look-back / block / look-ahead windows.
//
// Glossary: `B` block samples (the hop: new output per window), `L` look-back samples, `A`
// look-ahead samples, `W = L + B + A` window samples, `X = min(A, B)` cross-fade samples,
// `C` speakers, `s` absolute start of the next block to emit.
//
// The offline `Windower` emits each window's *first* part, so a sample waits for a whole window
// (latency W). Here the window is centred on the block instead: a window `[s − L, s + B + A)` is
// separated as soon as its last sample arrives and only its block `[s, s + B)` is emitted, so a
// sample waits at most `B + A` while the model still sees `L` seconds of the past. Consecutive
// windows overlap by `L + A`: the new window's speaker order is chosen to match the previous
// window there (`bestPermutation`), and the first `X` samples of the block are cross-faded (raised
// cosine) from the previous window's look-ahead estimate into the new window's estimate.
//
// At the start the windows grow (`[0, s + B + A)`) until `L` samples of past exist. At the end the
// last window reaches back far enough to span `W` samples (or the whole input), so an input of at
// most `B + A` samples is one window: exactly the separator's output on the whole input.

import Foundation

// MARK: - Settings

/// Block, window and look-ahead lengths of a stream; the algorithmic latency is block + look-ahead.
public struct StreamingSettings: Equatable, Sendable {
    /// New output per window (the hop), in seconds.
    public var blockSeconds: Double
    /// Whole window (look-back + block + look-ahead), in seconds.
    public var windowSeconds: Double
    /// Future context after the block, in seconds (also the cross-fade into the next block, up to
    /// one block).
    public var lookAheadSeconds: Double

    /// Defaults chosen by measurement (BENCHMARKS.md, "Streaming"): 0.8 s blocks in 1.6 s windows
    /// with 0.05 s look-ahead (0.75 s look-back). Latency 0.85 s at the model rate, ≤ 0.97 s with
    /// resampling from 16–48 kHz; each sample is computed twice (window / block = 2), which keeps
    /// the real-time factor near 0.5 on one core. On the development set the window length mattered
    /// more than the look-ahead, and every setting tried with 1.5–2.5 s windows stayed within 1 dB
    /// of offline separation.
    public static let standard = StreamingSettings(blockSeconds: 0.8, windowSeconds: 1.6, lookAheadSeconds: 0.05)

    public init(blockSeconds: Double, windowSeconds: Double, lookAheadSeconds: Double) {
        self.blockSeconds = blockSeconds
        self.windowSeconds = windowSeconds
        self.lookAheadSeconds = lookAheadSeconds
    }

    /// Look-back (past context) in seconds: window − block − look-ahead.
    public var lookBackSeconds: Double { windowSeconds - blockSeconds - lookAheadSeconds }

    /// The delay the windowing alone adds (block + look-ahead), in seconds; resampling adds a few
    /// milliseconds (`StreamingSeparator.latencySeconds`) and computing a window adds its run time.
    public var algorithmicLatencySeconds: Double { blockSeconds + lookAheadSeconds }

    /// Block, look-back and look-ahead in samples at `rate`.
    ///
    /// Throws `SeparationError.badWindow` unless the block is at least 10 ms, the look-ahead is ≥ 0
    /// and the window holds block + look-ahead (look-back ≥ 0). All values must be finite.
    public func samples(at rate: Int) throws -> (block: Int, lookBack: Int, lookAhead: Int) {
        guard blockSeconds.isFinite, windowSeconds.isFinite, lookAheadSeconds.isFinite else {
            throw SeparationError.badWindow("block, window and look-ahead must be finite numbers")
        }
        guard blockSeconds >= 0.01 else {
            throw SeparationError.badWindow("block of \(blockSeconds) s: need at least 0.01 s")
        }
        guard lookAheadSeconds >= 0 else {
            throw SeparationError.badWindow("look-ahead of \(lookAheadSeconds) s: must not be negative")
        }
        guard windowSeconds + 1e-9 >= blockSeconds + lookAheadSeconds else {
            throw SeparationError.badWindow("window of \(windowSeconds) s is shorter than block \(blockSeconds) s + look-ahead \(lookAheadSeconds) s")
        }
        let b = max(1, Int((blockSeconds * Double(rate)).rounded()))
        let a = Int((lookAheadSeconds * Double(rate)).rounded())
        let w = Int((windowSeconds * Double(rate)).rounded())
        return (b, max(0, w - b - a), a)
    }
}

// MARK: - Windower (model rate)

/// Push-style look-back/look-ahead windowing at the model's rate: samples in, separated samples
/// out after at most `block + lookAhead` samples of delay, memory O(W) however long the input.
///
/// Over the whole run each speaker gets exactly as many samples as were pushed. Not thread-safe.
public final class StreamingWindower {
    public let separator: WindowSeparator
    /// Block B, look-back L and look-ahead A, in samples.
    public let block: Int, lookBack: Int, lookAhead: Int
    /// Windows separated so far.
    public private(set) var windowsProcessed = 0

    /// Input pushed so far (the last window may reach back W before `nextStart`).
    private var input = InputHistory()
    /// Samples pushed, and the start of the next block to emit (everything before it is out).
    private var total: Int { input.end }
    private var nextStart = 0
    /// The previous window's outputs (in the aligned speaker order) over `[prevStart, prevStart + n)`.
    private var previous: [[Float]]? = nil
    private var previousStart = 0
    private var finished = false
    /// Cross-fade ramp, 0 → 1 over X samples.
    private let ramp: [Float]

    /// Creates a windower; `block` must be ≥ 1, `lookBack` and `lookAhead` ≥ 0 (checked).
    public init(separator: WindowSeparator, block: Int, lookBack: Int, lookAhead: Int) {
        precondition(block >= 1 && lookBack >= 0 && lookAhead >= 0, "need block ≥ 1, look-back ≥ 0, look-ahead ≥ 0")
        self.separator = separator
        self.block = block
        self.lookBack = lookBack
        self.lookAhead = lookAhead
        ramp = raisedCosineRamp(min(lookAhead, block))
    }

    /// Window length W = L + B + A.
    public var window: Int { lookBack + block + lookAhead }

    /// Input samples held (bounded by about 2·W + the largest pushed block); for memory tests.
    public var bufferedSamples: Int { input.samples.count + (previous?.first?.count ?? 0) * separator.speakers }

    /// Adds samples; returns the separated samples that are now final (one array per speaker).
    public func push(_ samples: [Float]) -> [[Float]] {
        precondition(!finished, "push after finish")
        input.append(samples)
        var out = [[Float]](repeating: [], count: separator.speakers)
        while total >= nextStart + block + lookAhead {
            let end = nextStart + block + lookAhead
            run(from: max(0, nextStart - lookBack), to: end, emitTo: nextStart + block, into: &out)
            nextStart += block
            input.discard(before: nextStart - window)
        }
        return out
    }

    /// Separates whatever is left and returns the remaining samples. Call once.
    public func finish() -> [[Float]] {
        precondition(!finished, "finish called twice")
        finished = true
        var out = [[Float]](repeating: [], count: separator.speakers)
        guard total > nextStart else { return out }
        if let previous, previousStart + previous[0].count >= total {
            // The previous window already reached the end of the input: its look-ahead is final.
            for c in 0..<previous.count { out[c] = Array(previous[c][(nextStart - previousStart)..<(total - previousStart)]) }
        } else {
            // Last window: reach back so that it spans W samples (or the whole input).
            let start = max(0, min(nextStart - lookBack, total - window))
            run(from: start, to: total, emitTo: total, into: &out)
        }
        nextStart = total
        input.removeAll()
        previous = nil
        return out
    }

    // MARK: Internals

    /// Separates input `[a, e)`, aligns it to the previous window, emits `[nextStart, emitTo)`.
    private func run(from a: Int, to e: Int, emitTo t: Int, into out: inout [[Float]]) {
        let c = separator.speakers
        var sep = separator.separate(input.slice(from: a, to: e))      // C × [e − a]
        windowsProcessed += 1
        let s = nextStart
        if let previous {
            // Align on every sample both windows estimated.
            let lo = max(a, previousStart), hi = min(e, previousStart + previous[0].count)
            if hi > lo {
                let prevPart = previous.map { Array($0[(lo - previousStart)..<(hi - previousStart)]) }
                let newPart = sep.map { Array($0[(lo - a)..<(hi - a)]) }
                let perm = bestPermutation(previous: prevPart, next: newPart)
                sep = perm.map { sep[$0] }
            }
        }
        // Cross-fade the start of the block from the previous window's look-ahead estimate.
        let prevEnd = previous.map { previousStart + $0[0].count } ?? s
        let fadeEnd = min(s + ramp.count, prevEnd, t)
        for ch in 0..<c {
            if fadeEnd > s, let previous {
                for p in s..<fadeEnd {
                    let r = ramp[p - s]
                    out[ch].append(previous[ch][p - previousStart] * (1 - r) + sep[ch][p - a] * r)
                }
            }
            out[ch].append(contentsOf: sep[ch][(max(fadeEnd, s) - a)..<(t - a)])
        }
        previous = sep
        previousStart = a
    }

}

// MARK: - Stream at any rate

/// Separates a mono stream at `inputRate` with bounded latency: resample to the model rate,
/// look-back/look-ahead windows, resample each speaker back; over the whole run each speaker gets
/// exactly as many samples as were pushed.
///
/// NaN and ±Inf input samples are replaced by 0 (counted in `nonFiniteSamples`), so a bad sample
/// never poisons the model's state. Memory is O(window), independent of the stream's length; the
/// output never drifts from the input (sample counts are exact, `samplesIn − samplesOut` stays
/// below the latency plus one pushed block). Not thread-safe.
public final class StreamingSeparator {
    public let inputRate: Int
    public let modelRate: Int
    public let speakers: Int
    public let settings: StreamingSettings
    public let windower: StreamingWindower
    private let resampleIn: Resampler?
    /// Input samples pushed (input rate).
    public private(set) var samplesIn = 0
    /// Samples emitted per speaker (input rate).
    public var samplesOut: Int { output.samplesOut }
    /// Input samples that were NaN or infinite (replaced by 0).
    public private(set) var nonFiniteSamples = 0
    /// Output back at the input rate, released so the total length equals the input's.
    private var output: RateMatchedOutput
    private var finished = false
    /// Algorithmic latency in seconds, measured once at creation by running the same pipeline on
    /// silence in 5 ms pieces: the longest time any sample waits between its arrival and its
    /// output, i.e. block + look-ahead + the resamplers' delays (libsoxr in low-latency mode). A
    /// pushed block adds its own length on top, and computing a window its run time.
    public private(set) var latencySeconds: Double = 0

    /// Creates a stream; throws `SeparationError.badWindow` for bad settings and `AudioError` for
    /// a bad rate.
    public convenience init(separator: WindowSeparator, modelRate: Int, inputRate: Int,
                            settings: StreamingSettings = .standard) throws {
        try self.init(separator: separator, modelRate: modelRate, inputRate: inputRate, settings: settings,
                      measuringLatency: true)
    }

    private init(separator: WindowSeparator, modelRate: Int, inputRate: Int, settings: StreamingSettings,
                 measuringLatency: Bool) throws {
        guard inputRate > 0, modelRate > 0 else {
            throw AudioError(path: "<stream>", kind: .invalidArgument, reason: "sample rates must be positive (input \(inputRate) Hz, model \(modelRate) Hz)")
        }
        let (b, l, a) = try settings.samples(at: modelRate)
        self.inputRate = inputRate
        self.modelRate = modelRate
        self.settings = settings
        speakers = separator.speakers
        windower = StreamingWindower(separator: separator, block: b, lookBack: l, lookAhead: a)
        if inputRate != modelRate {
            resampleIn = try Resampler(from: inputRate, to: modelRate, lowLatency: true)
        } else {
            resampleIn = nil
        }
        output = try RateMatchedOutput(speakers: separator.speakers, modelRate: modelRate, inputRate: inputRate,
                                       holdBack: 0, lowLatency: true)
        if measuringLatency {
            latencySeconds = try Self.measureLatency(modelRate: modelRate, inputRate: inputRate, settings: settings)
        }
    }

    /// The part of `latencySeconds` due to resampling (0 when the input is at the model rate).
    public var resamplingDelaySeconds: Double {
        max(0, latencySeconds - Double(windower.block + windower.lookAhead) / Double(modelRate))
    }

    /// Windows separated so far.
    public var windowsProcessed: Int { windower.windowsProcessed }

    /// Samples held inside (input buffer, previous window, resampled output), for memory tests.
    public var bufferedSamples: Int { windower.bufferedSamples + output.heldSamples }

    /// Adds input samples; returns the separated samples that are final (may be empty arrays).
    public func push(_ block: [Float]) throws -> [[Float]] {
        precondition(!finished, "push after finish")
        var x = block
        for i in x.indices where !x[i].isFinite {
            x[i] = 0
            nonFiniteSamples += 1
        }
        samplesIn += x.count
        let m = try resampleIn?.process(x) ?? x
        return try output.deliver(windower.push(m), samplesIn: samplesIn, last: false)
    }

    /// Ends the input; returns the remaining separated samples. Call once.
    public func finish() throws -> [[Float]] {
        precondition(!finished, "finish called twice")
        finished = true
        var outs = [[Float]](repeating: [], count: speakers)
        if let r = resampleIn {
            outs = windower.push(try r.flush())
        }
        let last = windower.finish()
        for c in 0..<speakers { outs[c] += last[c] }
        return try output.deliver(outs, samplesIn: samplesIn, last: true)
    }

    /// The longest wait of any sample (seconds) through a pipeline of these rates and settings,
    /// run on `seconds` of silence pushed in `piece`-second pieces with a pass-through separator.
    ///
    /// Sample `j` is recorded when `j` samples have arrived and leaves with the first output that
    /// includes it; its wait is the input that arrived in between (piece granularity included).
    public static func measureLatency(modelRate: Int, inputRate: Int, settings: StreamingSettings,
                                      piece: Double = 0.005, seconds: Double? = nil) throws -> Double {
        let s = try StreamingSeparator(separator: PassThroughSeparator(), modelRate: modelRate, inputRate: inputRate,
                                       settings: settings, measuringLatency: false)
        let p = max(1, Int((piece * Double(inputRate)).rounded()))
        let total = Int(((seconds ?? settings.windowSeconds + 6 * settings.blockSeconds + 0.5) * Double(inputRate)).rounded())
        let zeros = [Float](repeating: 0, count: p)
        var lag = 0
        while s.samplesIn < total {
            let before = s.samplesOut
            let out = try s.push(zeros)
            if let n = out.first?.count, n > 0 {
                // The oldest sample released now is sample `before`, recorded at input count `before`.
                lag = max(lag, s.samplesIn - before)
            }
        }
        return Double(lag) / Double(inputRate)
    }
}

/// One speaker that is the window itself (latency measurement).
private final class PassThroughSeparator: WindowSeparator {
    var speakers: Int { 1 }
    func separate(_ window: [Float]) -> [[Float]] { [window] }
}
