import Foundation
import XCTest
@testable import MambaSep

/// The hidden-attention kernel: α·x is the scan without its D skip and gate, and the fast kernel
/// matches the definition (ScanRecorderTests runs it on a real forward pass's operands).
final class HiddenAttentionTests: XCTestCase {

    /// The property the issue asks for: for a short random sequence, per channel, `α · x` equals
    /// the scan output without the D skip (and without the gate), within 1e-5, both directions,
    /// against the plain-loop scan and against the engine's fast scan.
    func testAttentionTimesInputIsTheScanWithoutSkipOrGate() {
        var k = RandomScan(t: 33, e: 16, m: 16, seed: 41)
        k.d = [Float](repeating: 0, count: k.e)
        for reverse in [false, true] {
            let plain = k.reference(reverse: reverse), engine = k.fast(reverse: reverse)
            var worst: Float = 0
            for ch in 0..<k.e {
                let alpha = k.attention(reverse: reverse, channels: ch..<(ch + 1))
                let y = applyAttention(alpha, to: k.x, channel: ch, length: k.t, channels: k.e)
                for t in 0..<k.t {
                    worst = max(worst, abs(y[t] - plain[t * k.e + ch]), abs(y[t] - engine[t * k.e + ch]))
                }
            }
            XCTAssertLessThanOrEqual(worst, 1e-5, "reverse \(reverse)")
        }
    }

    func testFastKernelMatchesTheDefinitionOverChannelRanges() {
        let k = RandomScan(t: 21, e: 24, m: 11, seed: 42)       // 8 states in registers + 3 through memory
        for reverse in [false, true] {
            let alpha = hiddenAttentionReference(delta: k.delta, a: k.a, b: k.b, c: k.c,
                                                 length: k.t, channels: k.e, states: k.m, reverse: reverse)
            for range in [0..<24, 3..<11, 5..<6, 16..<24, 9..<17] {
                let fast = k.attention(reverse: reverse, channels: range)
                var expect = [Float](repeating: 0, count: k.t * k.t)
                for i in 0..<expect.count { expect[i] = Float(range.reduce(0.0) { $0 + alpha[$1][i] }) }
                XCTAssertLessThan(relativeL2Error(fast, expect), 1e-5, "reverse \(reverse) channels \(range)")
                // Only the direction's triangle (and the diagonal) is written.
                for t in 0..<k.t {
                    for s in 0..<k.t where reverse ? s < t : s > t { XCTAssertEqual(fast[t * k.t + s], 0) }
                }
            }
        }
    }

    func testFastDecaysAreCutOffWithoutChangingTheResult() {
        var k = RandomScan(t: 40, e: 8, m: 4, seed: 43)
        k.delta = k.delta.map { $0 * 200 }                  // exp(Δ·A) ≈ 0 after a step or two
        k.d = [Float](repeating: 0, count: k.e)
        for reverse in [false, true] {
            let alpha = k.attention(reverse: reverse, channels: 0..<8)
            XCTAssertTrue(alpha.allSatisfy(\.isFinite))
            let ref = hiddenAttentionReference(delta: k.delta, a: k.a, b: k.b, c: k.c,
                                               length: k.t, channels: k.e, states: k.m, reverse: reverse)
            let expect = (0..<(k.t * k.t)).map { i in Float((0..<8).reduce(0.0) { $0 + ref[$1][i] }) }
            XCTAssertLessThan(relativeL2Error(alpha, expect), 1e-5)
        }
    }
}
