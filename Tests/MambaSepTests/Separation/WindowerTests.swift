import Foundation
import XCTest
@testable import MambaSep

/// Window plans, and the one windower under both: windows, alignment, cross-fade, exact lengths.
final class WindowerTests: XCTestCase {
    // MARK: Plans

    func testPlansInSamples() throws {
        // Offline windows are the look-back-0 case: B = W − O, A = O, the last window reaching W/2.
        XCTAssertEqual(try WindowPlan.offline(window: 2, overlap: 0.5).sizes(at: 8000),
                       WindowSizes(block: 12000, lookBack: 0, lookAhead: 4000, lastWindowReach: 8000))
        XCTAssertEqual(try WindowPlan.standardOffline.sizes(at: 8000).window, 128_000)
        // Live windows are centred on their block and the last one reaches back a whole window.
        let live = try WindowPlan.standardLive.sizes(at: 8000)
        XCTAssertEqual(live, WindowSizes(block: 6400, lookBack: 6000, lookAhead: 400, lastWindowReach: 12800))
        XCTAssertEqual(live.crossFade, 400)
        XCTAssertEqual(WindowPlan.standardLive.lookBackSeconds, 0.75, accuracy: 1e-12)
        XCTAssertEqual(WindowPlan.standardLive.algorithmicLatencySeconds, 0.85, accuracy: 1e-12)
        XCTAssertTrue(WindowPlan.standardLive.lowLatencyResampling)
        XCTAssertFalse(WindowPlan.standardOffline.lowLatencyResampling)
    }

    func testBadPlansAreClearErrors() {
        func message(_ p: WindowPlan) -> String? {
            do { _ = try p.sizes(at: 8000); return nil } catch { return "\(error)" }
        }
        XCTAssertNotNil(message(.offline(window: 1, overlap: 1)))
        XCTAssertNotNil(message(.offline(window: 0, overlap: 0)))
        XCTAssertNotNil(message(.offline(window: .nan, overlap: 0)))
        XCTAssertNotNil(message(.offline(window: 2, overlap: -1)))
        XCTAssertTrue(message(.live(block: 0.001, window: 1, lookahead: 0))?.contains("at least 0.01 s") ?? false)
        XCTAssertTrue(message(.live(block: 0.5, window: 0.6, lookahead: 0.25))?.contains("shorter than block") ?? false)
        XCTAssertTrue(message(.live(block: 0.5, window: 1, lookahead: -1))?.contains("negative") ?? false)
        XCTAssertTrue(message(.live(block: .nan, window: 1, lookahead: 0))?.contains("finite") ?? false)
        XCTAssertNil(message(.live(block: 0.5, window: 0.5, lookahead: 0)))
    }

    // MARK: Building blocks

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

    func testPermutationSearch() {
        let a: [Float] = [1, 0, 1, 0], b: [Float] = [0, 1, 0, 1], z: [Float] = [0, 0, 0, 0]
        XCTAssertEqual(bestPermutation(previous: [a, b], next: [b, a]), [1, 0])
        XCTAssertEqual(bestPermutation(previous: [a, b], next: [a, b]), [0, 1])
        XCTAssertEqual(bestPermutation(previous: [z, z], next: [a, b]), [0, 1])      // tie: identity
        XCTAssertEqual(bestPermutation(previous: [a, b, z], next: [z, a, b]), [1, 2, 0])
    }

    // MARK: Windows

    /// Sources with pauses that never coincide, plus noise so every window is distinguishable.
    private func sources(count c: Int, length n: Int, rate: Int, seed: UInt64) -> [[Float]] {
        var rng = SeededRandom(seed: seed)
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

    func testAlignmentKeepsSpeakersConsistentOverManyWindows() {
        let plans = [WindowSizes(block: 20000, lookBack: 0, lookAhead: 4000, lastWindowReach: 12000),   // offline 3 s / 0.5 s
                     WindowSizes(block: 6400, lookBack: 6000, lookAhead: 400)]                          // live default
        for c in [2, 3] {
            for sizes in plans {
                let n = 8000 * 30 + 1234
                let src = sources(count: c, length: n, rate: 8000, seed: UInt64(c))
                let oracle = ShufflingOracleSeparator(sources: src, seed: 99)
                let w = Windower(separator: oracle, sizes: sizes)
                let out = w.run(oracle.mix, sizes: [5000])
                XCTAssertGreaterThan(w.windowsProcessed, 10)
                XCTAssertEqual(out.map(\.count), [Int](repeating: n, count: c))
                // The global order may be any permutation, but it must be the same everywhere.
                let perm = bestPermutation(previous: src, next: out)
                for s in 0..<c {
                    XCTAssertLessThan(maxAbsError(out[perm[s]], src[s]), 1e-5, "speakers \(c), \(sizes): source \(s) not recovered")
                }
            }
        }
    }

    func testShortInputIsOneWindowEqualToSingleSeparation() throws {
        let model = try DPMamba(file: try SafeTensorsFile(data: randomModelBuilder(tinyConfig(), seed: 5).build()))
        var rng = SeededRandom(seed: 6)
        let x = rng.floats(3001, -0.5, 0.5)
        let direct = model.separate(x)
        for plan in [WindowPlan.offline(window: 0.5, overlap: 0.0625), .live(block: 0.3, window: 0.5, lookahead: 0.1)] {
            let w = Windower(separator: Separator(model: model), sizes: try plan.sizes(at: 8000))
            XCTAssertEqual(w.run(x, sizes: [700]), direct, "\(plan)")
            XCTAssertEqual(w.windowsProcessed, 1)
        }
    }

    func testEveryLengthComesOutExactAndWindowsCoverTheInput() {
        // Offline W = 1000, O = 250; the last window ends at the input's end and spans at least W/2.
        for n in [1, 499, 500, 501, 999, 1000, 1001, 1500, 2750, 4321] {
            let src = sources(count: 2, length: n + 4, rate: 8000, seed: UInt64(n))
            let oracle = ShufflingOracleSeparator(sources: src.map { Array($0.prefix(n + 3)) }, seed: 1)
            let w = Windower(separator: oracle, sizes: WindowSizes(block: 750, lookBack: 0, lookAhead: 250, lastWindowReach: 500))
            let out = w.run(Array(oracle.mix.prefix(n)), sizes: [333])
            XCTAssertEqual(out.map(\.count), [n, n], "n = \(n)")
            XCTAssertEqual(oracle.calls.last.map { $0.offset + $0.length }, n)
            if n > 1000 { XCTAssertGreaterThanOrEqual(oracle.calls.last?.length ?? 0, 500) }
            XCTAssertTrue(oracle.calls.allSatisfy { $0.length <= 1000 })
        }
    }

    func testPassThroughIsTransparentForEveryPlanShape() {
        // Overlaps beyond half the window included: the cross-fade is min(A, B), so no sample is
        // emitted twice or skipped.
        var rng = SeededRandom(seed: 2)
        let x = rng.floats(9001, -0.5, 0.5)
        for sizes in [WindowSizes(block: 300, lookBack: 0, lookAhead: 700, lastWindowReach: 500),
                      WindowSizes(block: 1000, lookBack: 0, lookAhead: 0, lastWindowReach: 500),
                      WindowSizes(block: 1, lookBack: 5, lookAhead: 3),
                      WindowSizes(block: 800, lookBack: 1600, lookAhead: 400)] {
            let out = Windower(separator: PassThroughSeparator(), sizes: sizes).run(x, sizes: [1, 977, 64])
            XCTAssertLessThan(maxAbsError(out[0], x), 1e-6, "\(sizes)")
            XCTAssertLessThan(maxAbsError(out[1], x.map { -$0 }), 1e-6, "\(sizes)")
        }
    }

    func testWindowsAreCentredOnTheirBlocksAndWaitAtMostBlockPlusLookAhead() {
        let p = PassThroughSeparator()
        let w = Windower(separator: p, sizes: WindowSizes(block: 800, lookBack: 1600, lookAhead: 400))
        var emittedAt: [Int] = []      // input count when each output sample left
        var pushed = 0
        for _ in 0..<1000 {
            let out = w.push([Float](repeating: 0.1, count: 8))
            pushed += 8
            emittedAt += [Int](repeating: pushed, count: out[0].count)
        }
        // Windows: growing while the past is short, then full W = 2800; emitted only when complete.
        XCTAssertEqual(Array(p.lengths.prefix(4)), [1200, 2000, 2800, 2800])
        // Sample j is recorded at input count j; no sample waits more than B + A.
        XCTAssertEqual(emittedAt.enumerated().map { j, t in t - j }.max(), 1200)
    }

    func testCrossFadeBlendsDisagreeingWindows() {
        // The output is a constant equal to the window index: the overlap must ramp smoothly from
        // one value to the next, monotonically.
        let w = Windower(separator: CountingSeparator(), sizes: WindowSizes(block: 80, lookBack: 0, lookAhead: 20, lastWindowReach: 50))
        let out = w.run([Float](repeating: 0.1, count: 260), sizes: [1000])[0]
        XCTAssertEqual(out.count, 260)
        XCTAssertEqual(out[0], 1)
        for i in 1..<out.count { XCTAssertGreaterThanOrEqual(out[i], out[i - 1]) }
        XCTAssertEqual(out[79], 1, accuracy: 0.01)
        XCTAssertEqual(out[100], 2, accuracy: 0.01)
    }
}
