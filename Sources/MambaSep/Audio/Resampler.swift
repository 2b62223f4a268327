import CSoxr
import Foundation

// MARK: - Resampler

/// A libsoxr sample-rate converter for mono or interleaved multi-channel float audio.
///
/// Use `Resampler.resample(_:from:to:)` for a whole buffer, or create one instance and call
/// `process(_:)` per block, then `flush()` once at the end, to convert a long stream in bounded
/// memory. Output is time-aligned with the input (libsoxr removes its filter delay). The whole
/// buffer API returns exactly `round(n · to / from)` frames. Equal rates pass samples through
/// unchanged. Rates must be positive; an invalid rate is an `AudioError` of kind
/// `.invalidArgument`.
public final class Resampler {
    /// Filter quality. `.high` is libsoxr's SOXR_HQ (20-bit), `.veryHigh` SOXR_VHQ (28-bit).
    public enum Quality: Sendable {
        case high
        case veryHigh

        var recipe: UInt {
            switch self {
            case .high: return UInt(SOXR_20_BITQ)
            case .veryHigh: return UInt(SOXR_28_BITQ)
            }
        }
    }

    public let inputRate: Int
    public let outputRate: Int
    public let channels: Int
    public let quality: Quality
    /// Whether libsoxr was set up for small internal blocks (see `init`).
    public let lowLatency: Bool
    /// Input frames given so far.
    public private(set) var framesIn: Int = 0
    /// Output frames returned so far.
    public private(set) var framesOut: Int = 0

    private var soxr: soxr_t?
    private var flushed = false

    /// Creates a streaming converter from `inputRate` to `outputRate` Hz.
    ///
    /// `lowLatency` makes libsoxr work in small DFT blocks (2^8 instead of 2^10 and more): the same
    /// filter, a little more CPU, and about half the streaming delay (≈ 50 ms instead of ≈ 110 ms
    /// per conversion when fed 10 ms pieces), for live streams.
    public init(from inputRate: Int, to outputRate: Int, channels: Int = 1, quality: Quality = .veryHigh,
                lowLatency: Bool = false) throws {
        guard inputRate > 0, outputRate > 0 else {
            throw AudioError(path: "<resampler>", kind: .invalidArgument,
                             reason: "sample rates must be positive (got \(inputRate) → \(outputRate) Hz)")
        }
        guard channels > 0 else {
            throw AudioError(path: "<resampler>", kind: .invalidArgument, reason: "channel count must be positive")
        }
        self.inputRate = inputRate
        self.outputRate = outputRate
        self.channels = channels
        self.quality = quality
        self.lowLatency = lowLatency
        if inputRate != outputRate {
            var err: soxr_error_t?
            var io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
            var q = soxr_quality_spec(quality.recipe, 0)
            var rt = soxr_runtime_spec(1)
            if lowLatency {
                rt.log2_min_dft_size = 8
                rt.log2_large_dft_size = 9
            }
            let s = soxr_create(Double(inputRate), Double(outputRate), UInt32(channels), &err, &io, &q, &rt)
            if let err {
                throw AudioError(path: "<resampler>", kind: .unsupported,
                                 reason: "libsoxr could not be set up: \(String(cString: err))")
            }
            soxr = s
        }
    }

    deinit { if let s = soxr { soxr_delete(s) } }

    /// Output frames expected for `frames` input frames: `round(frames · outputRate / inputRate)`.
    public func expectedOutputFrames(forInputFrames frames: Int) -> Int {
        Resampler.outputLength(frames, from: inputRate, to: outputRate)
    }

    static func outputLength(_ n: Int, from: Int, to: Int) -> Int {
        Int((Double(n) * Double(to) / Double(from)).rounded())
    }

    // MARK: Streaming

    /// Converts one block of interleaved input and returns what is ready (may be empty).
    ///
    /// Throws `.invalidArgument` after `flush()` or when the block is not a whole number of frames.
    public func process(_ input: [Float]) throws -> [Float] {
        guard !flushed else {
            throw AudioError(path: "<resampler>", kind: .invalidArgument, reason: "process() called after flush()")
        }
        guard input.count % channels == 0 else {
            throw AudioError(path: "<resampler>", kind: .invalidArgument,
                             reason: "block of \(input.count) samples is not a whole number of \(channels)-channel frames")
        }
        let frames = input.count / channels
        framesIn += frames
        guard let s = soxr else {
            framesOut += frames
            return input
        }
        if frames == 0 { return [] }
        let out = try run(s, input: input, frames: frames)
        framesOut += out.count / channels
        return out
    }

    /// Signals the end of input and returns the remaining output.
    ///
    /// After `flush()`, the total output length is `round(framesIn · outputRate / inputRate)`
    /// (padded with zeros or cut by at most a frame or two of libsoxr rounding). Calling it twice
    /// returns an empty array.
    public func flush() throws -> [Float] {
        if flushed { return [] }
        flushed = true
        let target = expectedOutputFrames(forInputFrames: framesIn)
        var out: [Float] = []
        if let s = soxr {
            out = try run(s, input: nil, frames: 0)
        }
        // Exact total length: pad or cut what libsoxr delivers at the end.
        let have = framesOut + out.count / channels
        if have < target {
            out.append(contentsOf: [Float](repeating: 0, count: (target - have) * channels))
        } else if have > target {
            let cut = min(have - target, out.count / channels)
            out.removeLast(cut * channels)
        }
        framesOut += out.count / channels
        return out
    }

    private func run(_ s: soxr_t, input: [Float]?, frames: Int) throws -> [Float] {
        var result: [Float] = []
        let ratio = Double(outputRate) / Double(inputRate)
        var capacity = Int(Double(max(frames, 1)) * ratio) + 1024
        var buffer = [Float](repeating: 0, count: capacity * channels)
        var consumed = 0
        while true {
            var idone = 0
            var odone = 0
            let remaining = frames - consumed
            let err: soxr_error_t? = buffer.withUnsafeMutableBufferPointer { obuf in
                if let input {
                    return input.withUnsafeBufferPointer { ibuf in
                        soxr_process(s, UnsafeRawPointer(ibuf.baseAddress! + consumed * channels), remaining, &idone,
                                     UnsafeMutableRawPointer(obuf.baseAddress!), capacity, &odone)
                    }
                } else {
                    return soxr_process(s, nil, 0, nil, UnsafeMutableRawPointer(obuf.baseAddress!), capacity, &odone)
                }
            }
            if let err {
                throw AudioError(path: "<resampler>", kind: .io, reason: "libsoxr failed: \(String(cString: err))")
            }
            consumed += idone
            result.append(contentsOf: buffer[0..<(odone * channels)])
            if input == nil {
                // Draining after end of input: libsoxr may deliver the tail over several calls.
                if odone == 0 { break }
            } else if consumed >= frames && odone < capacity {
                break
            }
            if odone == capacity && capacity < (1 << 22) {
                capacity *= 2
                buffer = [Float](repeating: 0, count: capacity * channels)
            }
        }
        return result
    }

    // MARK: Whole buffer

    /// Resamples a whole mono (or interleaved, `channels` > 1) buffer to exactly
    /// `round(frames · to / from)` frames.
    public static func resample(_ input: [Float], from: Int, to: Int, channels: Int = 1,
                                quality: Quality = .veryHigh) throws -> [Float] {
        if from == to && from > 0 { return input }
        let r = try Resampler(from: from, to: to, channels: channels, quality: quality)
        var out = try r.process(input)
        out.append(contentsOf: try r.flush())
        return out
    }
}
