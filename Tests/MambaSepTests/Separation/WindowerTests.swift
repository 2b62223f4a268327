import Foundation
import XCTest
@testable import MambaSep

/// A separator that "knows" the true sources: it finds where the window lies in the mixture and
/// returns the matching source slices in a random order (a new order every window).
final class ShufflingOracleSeparator: WindowSeparator {
    let sources: [[Float]]
    /// The mixture to feed: the sum of the sources plus a faint unique dither (so every window
    /// position can be recognised even where all sources are silent).
    let mix: [Float]
    private var offsets: [[UInt32]: Int] = [:]
    private var rng: EngineRNG
    private(set) var calls: [(offset: Int, length: Int)] = []
    var speakers: Int { sources.count }

    init(sources: [[Float]], seed: UInt64) {
        self.sources = sources
        rng = EngineRNG(seed: seed)
        var dither = EngineRNG(seed: seed &+ 1000)
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

/// Windowing, alignment, cross-fade and exact lengths.
final class WindowerTests: XCTestCase {
    func testInputHistoryKeepsPositionsAndBoundsMemory() {
        var h = InputHistory()
        var pushed: [Float] = []
        for k in 0..<200 {
            let block = (0..<(k % 7 * 13 + 1)).map { Float(pushed.count + $0) }
            h.append(block)
            pushed += block
            h.discard(before: h.end - 50)                       // keep the last 50 positions live
            XCTAssertEqual(h.end, pushed.count)
            let a = max(0, h.end - 50)
            XCTAssertEqual(h.slice(from: a, to: h.end), Array(pushed[a...]))
            XCTAssertLessThanOrEqual(h.samples.count, 2 * 50 + 7 * 13 + 1)
        }
        h.discard(before: 3)                                     // already gone: no-op
        let end = h.end
        h.removeAll()
        XCTAssertEqual(h.end, end)
        XCTAssertEqual(h.slice(from: end, to: end), [])
        XCTAssertEqual(raisedCosineRamp(0), [])
        let r = raisedCosineRamp(8)
        XCTAssertEqual(r.count, 8)
        for k in 0..<8 { XCTAssertEqual(r[k] + r[7 - k], 1, accuracy: 1e-6) }   // symmetric cross-fade
    }

    /// Sources with pauses that never coincide, plus noise so every window is distinguishable.
    private func sources(count c: Int, length n: Int, rate: Int, seed: UInt64) -> [[Float]] {
        var rng = EngineRNG(seed: seed)
        return (0..<c).map { s in
            let f = 150.0 * Double(s + 1) + 37
            let on = Double(rate) * (1.3 + 0.4 * Double(s))      // speaking period
            return (0..<n).map { i -> Float in
                let phase = (Double(i) + Double(s) * on / Double(c)).truncatingRemainder(dividingBy: on) / on
                let gate: Double = phase < 0.8 ? 1 : 0               // 20 % pause, staggered
                let v = 0.3 * sin(2 * .pi * f * Double(i) / Double(rate)) + 0.05 * Double(Float.random(in: -1..<1, using: &rng))
                return Float(gate * v)
            }
        }
    }

    /// Runs `windower` over `input` in blocks of `block` samples.
    private func run(_ w: Windower, _ input: [Float], block: Int) -> [[Float]] {
        var out = [[Float]](repeating: [], count: w.separator.speakers)
        var i = 0
        while i < input.count {
            let part = w.push(Array(input[i..<min(i + block, input.count)]))
            for c in 0..<out.count { out[c] += part[c] }
            i += block
        }
        let last = w.finish()
        for c in 0..<out.count { out[c] += last[c] }
        return out
    }

    func testAlignmentKeepsSpeakersConsistentOverManyWindows() {
        for c in [2, 3] {
            let rate = 8000, n = 8000 * 30 + 1234
            let src = sources(count: c, length: n, rate: rate, seed: UInt64(c))
            let oracle = ShufflingOracleSeparator(sources: src, seed: 99)
            let w = Windower(separator: oracle, window: 8000 * 3, overlap: 4000)
            let out = run(w, oracle.mix, block: 5000)
            XCTAssertGreaterThan(w.windowsProcessed, 10)
            XCTAssertEqual(out.map(\.count), [Int](repeating: n, count: c))
            // The global order may be any permutation, but it must be the same everywhere.
            let perm = bestPermutation(previous: src, next: out)
            for s in 0..<c {
                XCTAssertLessThan(maxAbsError(out[perm[s]], src[s]), 1e-5, "speakers \(c): source \(s) not recovered")
            }
        }
    }

    func testShortInputIsOneWindowEqualToSingleSeparation() throws {
        let model = try DPMamba(file: try SafeTensorsFile(data: randomModelBuilder(tinyConfig(), seed: 5).build()))
        var rng = EngineRNG(seed: 6)
        let x = rng.floats(3001, -0.5, 0.5)
        let direct = model.separate(x)
        let w = Windower(separator: Separator(model: model), window: 4000, overlap: 500)
        let out = run(w, x, block: 700)
        XCTAssertEqual(w.windowsProcessed, 1)
        XCTAssertEqual(out, direct)
        // The same through the full stream (same rate: no resampling).
        let stream = try SeparationStream(separator: Separator(model: model), modelRate: 8000, inputRate: 8000,
                                          settings: WindowSettings(windowSeconds: 0.5, overlapSeconds: 0.1))
        var got = [[Float]](repeating: [], count: 2)
        for part in [try stream.push(Array(x[0..<1000])), try stream.push(Array(x[1000...])), try stream.finish()] {
            for c in 0..<2 { got[c] += part[c] }
        }
        XCTAssertEqual(got, direct)
    }

    func testEveryLengthComesOutExactAndWindowsCoverTheInput() {
        for n in [1, 499, 500, 501, 999, 1000, 1001, 1500, 2750, 4321] {
            let src = sources(count: 2, length: n + 4, rate: 8000, seed: UInt64(n))
            let trimmed = src.map { Array($0.prefix(n + 3)) }
            let oracle = ShufflingOracleSeparator(sources: trimmed, seed: 1)
            let w = Windower(separator: oracle, window: 1000, overlap: 250)
            let out = run(w, Array(oracle.mix.prefix(n)), block: 333)
            XCTAssertEqual(out.map(\.count), [n, n], "n = \(n)")
            // The last window ends at the input's end and spans at least half a window.
            XCTAssertEqual(oracle.calls.last.map { $0.offset + $0.length }, n)
            if n > 1000 { XCTAssertGreaterThanOrEqual(oracle.calls.last?.length ?? 0, 500) }
            XCTAssertTrue(oracle.calls.allSatisfy { $0.length <= 1000 })
        }
    }

    func testCrossFadeBlendsDisagreeingWindows() {
        // A separator whose output is a constant equal to the window index: the overlap must ramp
        // smoothly from one value to the next, monotonically.
        final class Counter: WindowSeparator {
            var k: Float = 0
            var speakers: Int { 1 }
            func separate(_ w: [Float]) -> [[Float]] { k += 1; return [[Float](repeating: k, count: w.count)] }
        }
        let w = Windower(separator: Counter(), window: 100, overlap: 20)
        let out = run(w, [Float](repeating: 0.1, count: 260), block: 1000)[0]
        XCTAssertEqual(out.count, 260)
        XCTAssertEqual(out[0], 1)
        for i in 1..<out.count { XCTAssertGreaterThanOrEqual(out[i], out[i - 1]) }
        XCTAssertEqual(out[79], 1, accuracy: 0.01)
        XCTAssertEqual(out[100], 2, accuracy: 0.01)
    }

    func testPermutationSearch() {
        let a: [Float] = [1, 0, 1, 0], b: [Float] = [0, 1, 0, 1], z: [Float] = [0, 0, 0, 0]
        XCTAssertEqual(bestPermutation(previous: [a, b], next: [b, a]), [1, 0])
        XCTAssertEqual(bestPermutation(previous: [a, b], next: [a, b]), [0, 1])
        XCTAssertEqual(bestPermutation(previous: [z, z], next: [a, b]), [0, 1])      // tie: identity
        XCTAssertEqual(bestPermutation(previous: [a, b, z], next: [z, a, b]), [1, 2, 0])
    }

    func testWindowSettingsValidation() {
        XCTAssertThrowsError(try WindowSettings(windowSeconds: 1, overlapSeconds: 1).samples(at: 8000))
        XCTAssertThrowsError(try WindowSettings(windowSeconds: 0, overlapSeconds: 0).samples(at: 8000))
        XCTAssertThrowsError(try WindowSettings(windowSeconds: .nan, overlapSeconds: 0).samples(at: 8000))
        XCTAssertThrowsError(try WindowSettings(windowSeconds: 2, overlapSeconds: -1).samples(at: 8000))
        XCTAssertEqual(try WindowSettings(windowSeconds: 2, overlapSeconds: 0.5).samples(at: 8000).window, 16000)
    }
}
