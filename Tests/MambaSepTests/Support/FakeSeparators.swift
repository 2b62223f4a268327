// Stand-ins for the model behind `WindowSeparator`, at 8 kHz, so windowing and streaming can be
// checked exactly and fast.

import Foundation
@testable import MambaSep

/// The window and its negation: a transparent two-speaker "separator" that records the length of
/// every window it was given.
final class PassThroughSeparator: WindowSeparator {
    var speakers: Int { 2 }
    var sampleRate: Int { 8000 }
    private(set) var lengths: [Int] = []
    func separate(_ w: [Float]) -> [[Float]] { lengths.append(w.count); return [w, w.map { -$0 }] }
}

/// One speaker whose output is a constant equal to the number of windows separated so far.
final class CountingSeparator: WindowSeparator {
    var speakers: Int { 1 }
    var sampleRate: Int { 8000 }
    private var k: Float = 0
    func separate(_ w: [Float]) -> [[Float]] { k += 1; return [[Float](repeating: k, count: w.count)] }
}

/// One speaker, the window itself, after `microseconds` of sleep (a slow model).
final class SlowSeparator: WindowSeparator {
    let microseconds: UInt32
    init(microseconds: UInt32) { self.microseconds = microseconds }
    var speakers: Int { 1 }
    var sampleRate: Int { 8000 }
    func separate(_ w: [Float]) -> [[Float]] { usleep(microseconds); return [w] }
}

/// A separator that "knows" the true sources: it finds where the window lies in the mixture and
/// returns the matching source slices in a random order (a new order every window).
final class ShufflingOracleSeparator: WindowSeparator {
    let sources: [[Float]]
    /// The mixture to feed: the sum of the sources plus a faint unique dither (so every window
    /// position can be recognised even where all sources are silent).
    let mix: [Float]
    private var offsets: [[UInt32]: Int] = [:]
    private var rng: SeededRandom
    private(set) var calls: [(offset: Int, length: Int)] = []
    var speakers: Int { sources.count }
    var sampleRate: Int { 8000 }

    init(sources: [[Float]], seed: UInt64) {
        self.sources = sources
        rng = SeededRandom(seed: seed)
        var dither = SeededRandom(seed: seed &+ 1000)
        mix = (0..<sources[0].count).map { i in sources.reduce(0) { $0 + $1[i] } + Float.random(in: -1e-4..<1e-4, using: &dither) }
        for i in 0..<max(0, mix.count - 3) where offsets[key(mix, i)] == nil { offsets[key(mix, i)] = i }
    }

    private func key(_ x: [Float], _ i: Int) -> [UInt32] { (0..<4).map { x[i + $0].bitPattern } }

    func separate(_ window: [Float]) -> [[Float]] {
        let off = window.count < 4 ? 0 : offsets[key(window, 0)]!
        calls.append((off, window.count))
        let parts = sources.map { Array($0[off..<(off + window.count)]) }
        return parts.shuffled(using: &rng)
    }
}

/// Runs `push`/`finish` over `x` in blocks whose sizes cycle through `sizes`; returns everything
/// emitted, one array per speaker.
func pushAll(_ x: [Float], sizes: [Int], speakers: Int, push: ([Float]) throws -> [[Float]],
             finish: () throws -> [[Float]]) rethrows -> [[Float]] {
    var out = [[Float]](repeating: [], count: speakers)
    var i = 0, k = 0
    while i < x.count {
        let n = sizes[k % sizes.count]
        let part = try push(Array(x[i..<min(i + n, x.count)]))
        for c in 0..<speakers { out[c] += part[c] }
        i += n
        k += 1
    }
    let last = try finish()
    for c in 0..<speakers { out[c] += last[c] }
    return out
}

extension Windower {
    /// Pushes `x` in blocks of `sizes` (cycled) and finishes.
    func run(_ x: [Float], sizes: [Int]) -> [[Float]] {
        pushAll(x, sizes: sizes, speakers: separator.speakers, push: push, finish: finish)
    }
}

extension SeparationStream {
    /// Pushes `x` in blocks of `sizes` (cycled) and finishes.
    func run(_ x: [Float], sizes: [Int]) throws -> [[Float]] {
        try pushAll(x, sizes: sizes, speakers: speakers, push: push, finish: finish)
    }
}
