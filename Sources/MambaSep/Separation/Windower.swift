// Push-style windowed separation of an unbounded signal in bounded memory.
//
// Glossary: `W` window samples, `O` overlap samples, `Hw = W − O` window hop, `C` speakers.
//
// Windows start at 0, Hw, 2·Hw, …; each is separated on its own, its speaker order aligned to
// the previous window on the overlap, and the overlap cross-faded (raised cosine). The last
// window covers what is left after the previous window's hop; when that is shorter than W/2 it
// starts earlier so that it still spans W/2 samples of context (only its new part is used). An
// input of at most W samples is a single window: the result is exactly the separator's output
// on the whole input.

import Foundation

// MARK: - Windower

/// Feeds samples in, gets finished separated samples out; memory stays O(W) however long the input.
///
/// Usage: `push(_:)` any number of blocks (each call returns the samples that became final,
/// one array per speaker, possibly empty), then `finish()` once for the rest. Over the whole
/// run the outputs have exactly as many samples as were pushed. Not thread-safe.
public final class Windower {
    public let separator: WindowSeparator
    /// Window length W (samples).
    public let window: Int
    /// Overlap O between consecutive windows (samples), 0 ≤ O < W.
    public let overlap: Int
    /// Number of windows separated so far.
    public private(set) var windowsProcessed = 0

    /// Input pushed so far, keeping enough history for a full last window.
    private var input = InputHistory()
    /// Absolute position where the next window starts (= start of the pending tail).
    private var nextStart = 0
    /// Total samples pushed.
    private var total: Int { input.end }
    /// The previous window's outputs over [nextStart, nextStart + O), not yet emitted.
    private var tail: [[Float]]? = nil
    private var finished = false
    /// Cross-fade ramp, 0 → 1 over O samples.
    private let ramp: [Float]

    /// Creates a windower; `window` must exceed `overlap` and `overlap` must be ≥ 0 (checked).
    public init(separator: WindowSeparator, window: Int, overlap: Int) {
        precondition(window > 0 && overlap >= 0 && overlap < window, "need 0 ≤ overlap < window")
        self.separator = separator
        self.window = window
        self.overlap = overlap
        ramp = raisedCosineRamp(overlap)
    }

    private var hop: Int { window - overlap }

    /// Adds samples; returns the separated samples that are now final (one array per speaker).
    public func push(_ samples: [Float]) -> [[Float]] {
        precondition(!finished, "push after finish")
        input.append(samples)
        var out = [[Float]](repeating: [], count: separator.speakers)
        while total - nextStart >= window {
            let sep = separator.separate(input.slice(from: nextStart, to: nextStart + window))
            emit(sep, regionStart: 0, isLast: false, into: &out)
            nextStart += hop
            input.discard(before: nextStart - window)   // the last window may reach back W
        }
        return out
    }

    /// Separates whatever is left and returns the remaining samples. Call once.
    public func finish() -> [[Float]] {
        precondition(!finished, "finish called twice")
        finished = true
        var out = [[Float]](repeating: [], count: separator.speakers)
        let remaining = total - nextStart
        if let tail, remaining <= overlap {
            // Nothing new beyond the previous window: its tail is final as it is.
            for c in 0..<tail.count { out[c] = Array(tail[c].prefix(remaining)) }
            return out
        }
        guard remaining > 0 else { return out }
        // Last window: what is left, extended back to at least W/2 samples; only its new part is used.
        let start = max(0, min(nextStart, total - window / 2))
        let sep = separator.separate(input.slice(from: start, to: total))
        emit(sep, regionStart: nextStart - start, isLast: true, into: &out)
        input.removeAll()
        return out
    }

    // MARK: Internals

    /// Aligns `sep` (whose samples from `regionStart` correspond to absolute `nextStart`) to the
    /// tail, cross-fades the overlap, appends final samples to `out` and keeps the new tail.
    private func emit(_ sep: [[Float]], regionStart r: Int, isLast: Bool, into out: inout [[Float]]) {
        let c = sep.count
        let n = sep.first?.count ?? 0
        var sep = sep
        var start = r
        if let tail {
            let o = tail[0].count
            let newOverlap = sep.map { Array($0[r..<(r + o)]) }
            let perm = bestPermutation(previous: tail, next: newOverlap)
            sep = perm.map { sep[$0] }
            for ch in 0..<c {
                var faded = [Float](repeating: 0, count: o)
                for k in 0..<o { faded[k] = tail[ch][k] * (1 - ramp[k]) + sep[ch][r + k] * ramp[k] }
                out[ch].append(contentsOf: faded)
            }
            start = r + o
        }
        let end = isLast ? n : n - overlap
        windowsProcessed += 1
        for ch in 0..<c where end > start { out[ch].append(contentsOf: sep[ch][start..<end]) }
        tail = isLast ? nil : sep.map { Array($0[(n - overlap)..<n]) }
    }
}
