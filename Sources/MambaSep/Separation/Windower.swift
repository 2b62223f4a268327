// Push-style windowed separation of an unbounded signal in bounded memory, at the separator's rate.
//
// Glossary (WindowPlan.swift): `B` block, `L` look-back, `A` look-ahead, `W = L + B + A` window,
// `X = min(A, B)` cross-fade, `R` last-window reach, all in samples; `C` speakers; `s` absolute
// start of the next block to emit.
//
// Window `[s − L, s + B + A)` is separated as soon as its last sample arrives and only its block
// `[s, s + B)` is emitted. Consecutive windows overlap by `L + A`: the new window's speaker order
// is chosen to match the previous window on every sample both estimated (`bestPermutation`), and
// the first `X` samples of the block are cross-faded (raised cosine) from the previous window's
// look-ahead estimate into the new window's.
//
// At the start the windows grow (`[0, s + B + A)`) until `L` samples of past exist. At the end the
// last window reaches back far enough to span `R` samples (or the whole input); when the previous
// window already reached the end, its look-ahead is final as it is. An input of at most `B + A`
// samples is one window: exactly the separator's output on the whole input.

import Foundation

// MARK: - Windower

/// Feeds samples in, gets finished separated samples out after at most `B + A` samples of delay;
/// memory stays O(W) however long the input.
///
/// Usage: `push(_:)` any number of blocks (each call returns the samples that became final, one
/// array per speaker, possibly empty), then `finish()` once for the rest. Over the whole run each
/// speaker gets exactly as many samples as were pushed. Not thread-safe.
public final class Windower {
    public let separator: WindowSeparator
    public let sizes: WindowSizes
    /// Windows separated so far.
    public private(set) var windowsProcessed = 0

    /// Input pushed so far (the last window may reach back W before `nextStart`).
    private var input = InputHistory()
    /// Samples pushed.
    private var total: Int { input.end }
    /// Start of the next block to emit (everything before it is out).
    private var nextStart = 0
    /// The previous window's outputs (in the aligned speaker order) over `[previousStart, previousStart + n)`.
    private var previous: [[Float]]? = nil
    private var previousStart = 0
    private var finished = false
    /// Cross-fade ramp, 0 → 1 over X samples.
    private let ramp: [Float]

    public init(separator: WindowSeparator, sizes: WindowSizes) {
        self.separator = separator
        self.sizes = sizes
        ramp = raisedCosineRamp(sizes.crossFade)
    }

    /// Input samples held (bounded by about 2·W + the largest pushed block); for memory tests.
    public var bufferedSamples: Int { input.samples.count + (previous?.first?.count ?? 0) * separator.speakers }

    /// Adds samples; returns the separated samples that are now final (one array per speaker).
    public func push(_ samples: [Float]) -> [[Float]] {
        precondition(!finished, "push after finish")
        input.append(samples)
        let (b, l, a) = (sizes.block, sizes.lookBack, sizes.lookAhead)
        var out = [[Float]](repeating: [], count: separator.speakers)
        while total >= nextStart + b + a {
            separateAndEmit(from: max(0, nextStart - l), to: nextStart + b + a, emitTo: nextStart + b, into: &out)
            nextStart += b
            input.discard(before: nextStart - sizes.window)
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
            // Last window: reach back so that it spans R samples (or the whole input).
            let start = max(0, min(nextStart - sizes.lookBack, total - sizes.lastWindowReach))
            separateAndEmit(from: start, to: total, emitTo: total, into: &out)
        }
        nextStart = total
        input.removeAll()
        previous = nil
        return out
    }

    // MARK: Stages

    /// Separates input `[a, e)`, aligns it to the previous window, emits `[nextStart, t)`.
    private func separateAndEmit(from a: Int, to e: Int, emitTo t: Int, into out: inout [[Float]]) {
        var sep = separator.separate(input.slice(from: a, to: e))      // C × [e − a]
        windowsProcessed += 1
        if let previous { sep = aligned(sep, from: a, to: previous) }
        emitCrossFaded(sep, from: a, upTo: t, into: &out)
        previous = sep
        previousStart = a
    }

    /// `sep` (window starting at `a`) reordered to continue `previous` on every sample both
    /// windows estimated.
    private func aligned(_ sep: [[Float]], from a: Int, to previous: [[Float]]) -> [[Float]] {
        let lo = max(a, previousStart), hi = min(a + sep[0].count, previousStart + previous[0].count)
        guard hi > lo else { return sep }
        let prevPart = previous.map { Array($0[(lo - previousStart)..<(hi - previousStart)]) }
        let newPart = sep.map { Array($0[(lo - a)..<(hi - a)]) }
        return bestPermutation(previous: prevPart, next: newPart).map { sep[$0] }
    }

    /// Appends `[nextStart, t)` of `sep` (window starting at `a`), its first X samples cross-faded
    /// from the previous window's look-ahead estimate.
    private func emitCrossFaded(_ sep: [[Float]], from a: Int, upTo t: Int, into out: inout [[Float]]) {
        let s = nextStart
        let prevEnd = previous.map { previousStart + $0[0].count } ?? s
        let fadeEnd = min(s + ramp.count, prevEnd, t)
        for ch in 0..<sep.count {
            if fadeEnd > s, let previous {
                for p in s..<fadeEnd {
                    let r = ramp[p - s]
                    out[ch].append(previous[ch][p - previousStart] * (1 - r) + sep[ch][p - a] * r)
                }
            }
            out[ch].append(contentsOf: sep[ch][(max(fadeEnd, s) - a)..<(t - a)])
        }
    }
}
