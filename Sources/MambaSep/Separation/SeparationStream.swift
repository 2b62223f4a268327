// The separation pipeline for a stream of samples at any rate, block by block: non-finite
// samples screened → resample in → windower → resample out → exact length. Files
// (`separateFile`) and standard input (`runStreamingSeparation`) are thin drivers over it.
//
// Glossary: `C` speakers; sample counts are at the input rate unless they say otherwise.

import Foundation

// MARK: - Stream

/// Separates a mono stream at `inputRate` block by block, returning separated blocks at the same
/// rate; over the whole run each speaker gets exactly as many samples as were pushed.
///
/// The plan decides the windows (`WindowPlan.offline` for files, `.live` for bounded latency).
/// Memory is O(window), independent of the stream's length; the output never drifts from the
/// input (`samplesIn − samplesOut` stays below the latency plus one pushed block). Non-finite
/// input samples follow `nonFinite` (by default replaced by 0 and counted, so a bad sample never
/// poisons the model's state). A non-finite output sample (the model overflowed) is
/// `SeparationError.nonFiniteOutput`, never passed on. Not thread-safe.
public final class SeparationStream {
    public let plan: WindowPlan
    public let inputRate: Int
    public let speakers: Int
    public let nonFinite: NonFiniteInput
    public let windower: Windower
    private let resampleIn: Resampler?
    /// Input samples pushed.
    public private(set) var samplesIn = 0
    /// Samples emitted per speaker.
    public var samplesOut: Int { output.samplesOut }
    /// Input samples that were NaN or infinite and were replaced by 0.
    public private(set) var nonFiniteSamples = 0
    /// Output back at the input rate, released so the total length equals the input's.
    private var output: RateMatchedOutput
    private var finished = false

    /// Creates a stream; throws `SeparationError.badWindow` for a plan that does not fit the
    /// separator's rate, `.badRate` for a rate that is not positive.
    public init(separator: WindowSeparator, inputRate: Int, plan: WindowPlan,
                nonFinite: NonFiniteInput = .replaceWithZero) throws {
        let modelRate = separator.sampleRate
        guard inputRate > 0, modelRate > 0 else { throw SeparationError.badRate(input: inputRate, model: modelRate) }
        self.plan = plan
        self.inputRate = inputRate
        self.nonFinite = nonFinite
        speakers = separator.speakers
        windower = Windower(separator: separator, sizes: try plan.sizes(at: modelRate))
        resampleIn = inputRate == modelRate ? nil
            : try Resampler(from: inputRate, to: modelRate, lowLatency: plan.lowLatencyResampling)
        output = try RateMatchedOutput(speakers: speakers, modelRate: modelRate, inputRate: inputRate,
                                       lowLatency: plan.lowLatencyResampling)
    }

    /// The separator's (model's) sample rate.
    public var modelRate: Int { windower.separator.sampleRate }

    /// Windows separated so far.
    public var windowsProcessed: Int { windower.windowsProcessed }

    /// Samples held inside (input buffer, previous window, resampled output), for memory tests.
    public var bufferedSamples: Int { windower.bufferedSamples + output.heldSamples }

    /// Adds input samples; returns the separated samples that are final (may be empty arrays).
    /// Throws `SeparationError.nonFiniteInput` under `NonFiniteInput.reject`.
    public func push(_ block: [Float]) throws -> [[Float]] {
        precondition(!finished, "push after finish")
        var x = block
        do {
            nonFiniteSamples += try nonFinite.apply(to: &x)
        } catch let bad as NonFiniteSample {
            throw SeparationError.nonFiniteInput(index: samplesIn + bad.index, value: bad.value)
        }
        samplesIn += x.count
        for v in x { inputPeak = max(inputPeak, abs(v)) }
        let m = try resampleIn?.process(x) ?? x
        return try checkedFinite(output.deliver(windower.push(m), samplesIn: samplesIn, last: false))
    }

    /// The largest |sample| pushed so far (after non-finite screening).
    public private(set) var inputPeak: Float = 0

    /// `out` (just delivered) when every sample is finite; else `SeparationError.nonFiniteOutput`
    /// at the first bad sample: the model overflowed (input far beyond full scale, or a faulty
    /// model), and writing zeros in its place would hide it.
    private func checkedFinite(_ out: [[Float]]) throws -> [[Float]] {
        let start = samplesOut - (out.first?.count ?? 0)
        for ch in out {
            if let i = ch.firstIndex(where: { !$0.isFinite }) {
                throw SeparationError.nonFiniteOutput(second: Double(start + i) / Double(inputRate), inputPeak: inputPeak)
            }
        }
        return out
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
        return try checkedFinite(output.deliver(outs, samplesIn: samplesIn, last: true))
    }

    // MARK: Latency

    /// The longest wait of any sample through this stream's plan and rates, in seconds: block +
    /// look-ahead + the resamplers' delays. Measured when called (`measureLatency`), not stored.
    public func measureLatency() throws -> Double {
        try Self.measureLatency(plan: plan, modelRate: modelRate, inputRate: inputRate)
    }

    /// The part of `latency` (a `measureLatency()` result) due to resampling.
    public func resamplingDelay(ofLatency latency: Double) -> Double {
        let sizes = windower.sizes
        return max(0, latency - Double(sizes.block + sizes.lookAhead) / Double(modelRate))
    }

    /// The longest wait of any sample (seconds) through a pipeline of these rates and plan, run on
    /// `seconds` of silence pushed in `piece`-second pieces with a pass-through separator.
    ///
    /// Sample `j` is recorded when `j` samples have arrived and leaves with the first output that
    /// includes it; its wait is the input that arrived in between (piece granularity included).
    /// A pushed block adds its own length on top, and computing a window its run time.
    public static func measureLatency(plan: WindowPlan, modelRate: Int, inputRate: Int,
                                      piece: Double = 0.005, seconds: Double? = nil) throws -> Double {
        let s = try SeparationStream(separator: PassThroughSeparator(sampleRate: modelRate), inputRate: inputRate, plan: plan)
        let p = max(1, Int((piece * Double(inputRate)).rounded()))
        let total = Int(((seconds ?? plan.windowSeconds + 6 * plan.blockSeconds + 0.5) * Double(inputRate)).rounded())
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
    let sampleRate: Int
    init(sampleRate: Int) { self.sampleRate = sampleRate }
    var speakers: Int { 1 }
    func separate(_ window: [Float]) -> [[Float]] { [window] }
}
