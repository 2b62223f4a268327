// How a signal is cut into windows for separation: one plan for files and for live streams.
//
// Glossary: `B` block samples (new output per window, the hop), `L` look-back samples (past
// context before the block), `A` look-ahead samples (future context after it), `W = L + B + A`
// window samples, `R` last-window reach (how far back the last window may start from the end).
//
// A window `[s − L, s + B + A)` is separated as soon as its last sample has arrived and only its
// block `[s, s + B)` is kept, so a sample waits at most `B + A`. Offline separation is the
// look-back-0 case: windows of W with an overlap O are `B = W − O`, `L = 0`, `A = O`.

import Foundation

// MARK: - Plan

/// Window sizes in seconds, as a user gives them; `sizes(at:)` turns them into samples.
///
/// Two kinds, one algorithm (`Windower`): `.offline(window:overlap:)` for files (long windows,
/// the last window reaching back W/2, high-quality resampling) and
/// `.live(block:window:lookahead:)` for streams (short windows centred on their block, the last
/// window reaching back W, low-latency resampling).
public enum WindowPlan: Equatable, Sendable {
    /// Windows of `window` seconds overlapping by `overlap` seconds (block = window − overlap,
    /// look-back 0, look-ahead = overlap).
    case offline(window: Double, overlap: Double)
    /// Blocks of `block` seconds in windows of `window` seconds with `lookahead` seconds of
    /// future context (look-back = window − block − lookahead).
    case live(block: Double, window: Double, lookahead: Double)

    /// Files: 16 s windows with 1 s overlap, chosen by measurement (BENCHMARKS.md).
    public static let standardOffline = WindowPlan.offline(window: 16, overlap: 1)

    /// Streams: 0.8 s blocks in 1.6 s windows with 0.05 s look-ahead (0.75 s look-back), chosen by
    /// measurement (BENCHMARKS.md, "Streaming"). Latency 0.85 s at the model rate, ≤ 0.97 s with
    /// resampling from 16–48 kHz; each sample is computed twice (window / block = 2), which keeps
    /// the real-time factor near 0.5 on one core. On the development set the window length mattered
    /// more than the look-ahead, and every setting tried with 1.5–2.5 s windows stayed within 1 dB
    /// of offline separation.
    public static let standardLive = WindowPlan.live(block: 0.8, window: 1.6, lookahead: 0.05)

    /// Whole window (look-back + block + look-ahead), in seconds.
    public var windowSeconds: Double {
        switch self {
        case let .offline(window, _): return window
        case let .live(_, window, _): return window
        }
    }

    /// New output per window (the hop), in seconds.
    public var blockSeconds: Double {
        switch self {
        case let .offline(window, overlap): return window - overlap
        case let .live(block, _, _): return block
        }
    }

    /// Future context after each block, in seconds.
    public var lookAheadSeconds: Double {
        switch self {
        case let .offline(_, overlap): return overlap
        case let .live(_, _, lookahead): return lookahead
        }
    }

    /// Past context before each block, in seconds.
    public var lookBackSeconds: Double { windowSeconds - blockSeconds - lookAheadSeconds }

    /// The delay the windowing alone adds (block + look-ahead), in seconds; resampling adds a few
    /// milliseconds (`SeparationStream.measureLatency`) and computing a window adds its run time.
    public var algorithmicLatencySeconds: Double { blockSeconds + lookAheadSeconds }

    /// Whether the resamplers work in small blocks (live streams: about half the delay).
    public var lowLatencyResampling: Bool {
        if case .live = self { return true }
        return false
    }

    /// Longest offline window, in seconds: memory grows with the window (a window as long as the
    /// file would hold the whole file), and windows beyond a minute gain nothing measurable.
    public static let maxOfflineWindowSeconds = 60.0

    /// Longest live window, in seconds: a live window is computed again every block, and the
    /// latency measurement at start costs about the square of the window.
    public static let maxLiveWindowSeconds = 10.0

    /// Checks the sizes in seconds; throws `SeparationError.badWindow` for sizes that cannot work.
    ///
    /// Offline: a window of 0.1–60 s, longer than the overlap, overlap ≥ 0. Live: a block of at
    /// least 10 ms, look-ahead ≥ 0 and a window of at most 10 s that holds block + look-ahead.
    /// All finite.
    public func validate() throws {
        switch self {
        case let .offline(window, overlap):
            guard window.isFinite, overlap.isFinite, window >= 0.1, overlap >= 0, overlap < window else {
                throw SeparationError.badWindow("window \(window) s with overlap \(overlap) s: need a window of at least 0.1 s longer than the overlap")
            }
            guard window <= Self.maxOfflineWindowSeconds else {
                throw SeparationError.badWindow("window of \(window) s: at most \(Int(Self.maxOfflineWindowSeconds)) s (memory grows with the window; long files are windowed anyway)")
            }
        case let .live(block, window, lookahead):
            guard block.isFinite, window.isFinite, lookahead.isFinite else {
                throw SeparationError.badWindow("block, window and look-ahead must be finite numbers")
            }
            guard block >= 0.01 else {
                throw SeparationError.badWindow("block of \(block) s: need at least 0.01 s")
            }
            guard lookahead >= 0 else {
                throw SeparationError.badWindow("look-ahead of \(lookahead) s: must not be negative")
            }
            guard window + 1e-9 >= block + lookahead else {
                throw SeparationError.badWindow("window of \(window) s is shorter than block \(block) s + look-ahead \(lookahead) s")
            }
            guard window <= Self.maxLiveWindowSeconds else {
                throw SeparationError.badWindow("window of \(window) s: at most \(Int(Self.maxLiveWindowSeconds)) s for a live stream (use `mambasep separate` for long context)")
            }
        }
    }

    /// The plan in samples at `rate` (`validate()` first).
    public func sizes(at rate: Int) throws -> WindowSizes {
        try validate()
        func samples(_ seconds: Double) -> Int { Int((seconds * Double(rate)).rounded()) }
        switch self {
        case let .offline(window, overlap):
            let w = samples(window)
            let o = min(samples(overlap), w - 1)
            return WindowSizes(block: w - o, lookBack: 0, lookAhead: o, lastWindowReach: w / 2)
        case let .live(block, window, lookahead):
            let b = max(1, samples(block)), a = samples(lookahead)
            let l = max(0, samples(window) - b - a)
            return WindowSizes(block: b, lookBack: l, lookAhead: a, lastWindowReach: l + b + a)
        }
    }
}

// MARK: - Sizes

/// A window plan in samples at the separator's rate.
public struct WindowSizes: Equatable, Sendable {
    /// Block B: new output per window (≥ 1).
    public let block: Int
    /// Look-back L: past context before the block (≥ 0).
    public let lookBack: Int
    /// Look-ahead A: future context after the block (≥ 0); also the cross-fade into the next
    /// block, up to one block.
    public let lookAhead: Int
    /// R: the last window spans at least this many samples (or the whole input), reaching back
    /// before its block when the input ends early; 1 ≤ R ≤ W.
    public let lastWindowReach: Int

    /// Creates sizes; `block` must be ≥ 1, `lookBack` and `lookAhead` ≥ 0, and the reach within
    /// 1…W (checked).
    public init(block: Int, lookBack: Int, lookAhead: Int, lastWindowReach: Int? = nil) {
        let w = lookBack + block + lookAhead
        let r = lastWindowReach ?? w
        precondition(block >= 1 && lookBack >= 0 && lookAhead >= 0, "need block ≥ 1, look-back ≥ 0, look-ahead ≥ 0")
        precondition(r >= 1 && r <= w, "need 1 ≤ last-window reach ≤ window")
        self.block = block
        self.lookBack = lookBack
        self.lookAhead = lookAhead
        self.lastWindowReach = r
    }

    /// Window W = L + B + A.
    public var window: Int { lookBack + block + lookAhead }

    /// Cross-fade X = min(A, B): the first samples of each block blend the previous window's
    /// look-ahead estimate into the new window's.
    public var crossFade: Int { min(lookAhead, block) }
}

// MARK: - Errors

/// Errors of the separation pipeline (audio and model errors pass through unchanged).
public enum SeparationError: Error, CustomStringConvertible, Equatable {
    case badWindow(String)
    case outputCount(expected: Int, got: Int)
    /// A sample rate that is not positive.
    case badRate(input: Int, model: Int)
    /// A pushed sample was NaN or ±Inf under `NonFiniteInput.reject`: its index among the
    /// samples pushed (input rate) and its value.
    case nonFiniteInput(index: Int, value: Float)
    /// A channel index outside the stream's channels (0-based).
    case channelOutOfRange(channel: Int, channels: Int)
    /// A reader whose rate is not the separation stream's input rate.
    case rateMismatch(stream: Int, separator: Int)
    /// The model's output became NaN or infinite at this time of the input (seconds); the input's
    /// largest |sample| so far tells whether the input overflowed it.
    case nonFiniteOutput(second: Double, inputPeak: Float)

    public var description: String {
        switch self {
        case let .badWindow(s): return "invalid window settings: \(s)"
        case let .outputCount(e, g): return "need \(e) output paths (one per speaker), got \(g)"
        case let .badRate(i, m): return "sample rates must be positive (input \(i) Hz, model \(m) Hz)"
        case let .nonFiniteInput(i, v): return "sample \(v) (not finite) at input sample \(i)"
        case let .channelOutOfRange(k, c): return "channel \(k) requested but the stream has \(c) channel(s) (0-based)"
        case let .rateMismatch(s, p): return "stream rate \(s) Hz differs from the separator's input rate \(p) Hz"
        case let .nonFiniteOutput(t, peak):
            let at = String(format: "%.2f", t)
            if peak > 1 {
                return "the model's output became NaN/Inf at \(at) s: the input reaches \(peak), far beyond full scale (±1); scale it down"
            }
            return "the model's output became NaN/Inf at \(at) s although the input is within full scale (±1): the model file may be faulty"
        }
    }
}
