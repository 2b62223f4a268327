// The recent input of a push-style windower, addressed by absolute sample position.

import Foundation

// MARK: - InputHistory

/// Samples pushed so far, of which only a recent suffix is kept: positions `start..<end` are
/// held, everything before `start` has been discarded.
///
/// Appends are amortised O(1): `discard(before:)` compacts only when the dead prefix is at
/// least half of what is held, so memory stays within twice the live suffix plus one append.
struct InputHistory {
    /// Held samples; `samples[0]` is absolute position `start`.
    private(set) var samples: [Float] = []
    /// Absolute position of the first held sample.
    private(set) var start = 0

    /// One past the last sample pushed (= number of samples pushed so far).
    var end: Int { start + samples.count }

    /// Appends samples at `end`.
    mutating func append(_ x: [Float]) { samples.append(contentsOf: x) }

    /// Samples at absolute positions `a..<b`, which must be held.   // [b − a]
    func slice(from a: Int, to b: Int) -> [Float] {
        precondition(a >= start && a <= b && b <= end, "slice \(a)..<\(b) outside held \(start)..<\(end)")
        return Array(samples[(a - start)..<(b - start)])
    }

    /// Forgets samples before `position` (no-op for positions at or before `start`).
    mutating func discard(before position: Int) {
        let drop = min(position, end) - start
        if drop > 0 && drop >= samples.count / 2 {
            samples.removeFirst(drop)
            start += drop
        }
    }

    /// Forgets every held sample; `end` stays where it was.
    mutating func removeAll() {
        start = end
        samples = []
    }
}

// MARK: - Cross-fade

/// Raised-cosine ramp rising from 0 to 1 over `n` samples (midpoint sampling: never exactly 0
/// or 1), for cross-fading one window's estimate into the next. `n = 0` gives `[]`.
func raisedCosineRamp(_ n: Int) -> [Float] {
    (0..<n).map { k in Float(0.5 - 0.5 * cos(Double.pi * (Double(k) + 0.5) / Double(n))) }  // [n]
}
