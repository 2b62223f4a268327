import Foundation
import XCTest
@testable import MambaSep

/// The hidden-attention kernel: α·x is the scan without its D skip and gate, the fast kernel
/// matches the definition, and the recorder sees the engine's real operands.
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

    /// Records real operands from the small parity model's forward pass and checks, for every
    /// sequence of a recorded layer, that α·x equals the engine's scan of those operands with D = 0.
    func testRecordedOperandsOfARealForwardPassGiveTheScan() throws {
        let model = try Fixtures.smallMamba()
        let layers = [MambaLayerID(block: 0, path: .intra), MambaLayerID(block: 1, path: .inter)]
        let recorder = CheckingRecorder(layers: Set(layers))
        var rng = SeededRandom(seed: 44)
        let input = rng.floats(1200, -0.5, 0.5)
        let plain = model.separate(input)
        let scratch = DPMambaScratch(workers: 2)
        let outs = (0..<2).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: input.count) }
        defer { outs.forEach { $0.deallocate() } }
        input.withUnsafeBufferPointer { model.forward($0.baseAddress!, samples: input.count, scratch: scratch, outputs: outs, recorder: recorder) }
        // Recording changes nothing in the output.
        for c in 0..<2 { XCTAssertEqual(Array(UnsafeBufferPointer(start: outs[c], count: input.count)), plain[c]) }
        let shape = model.shape(samples: input.count)
        let k = model.config.chunkSize
        XCTAssertEqual(recorder.seen[RecorderKey(layer: layers[0], reverse: false)], shape.chunks)
        XCTAssertEqual(recorder.seen[RecorderKey(layer: layers[0], reverse: true)], shape.chunks)
        XCTAssertEqual(recorder.seen[RecorderKey(layer: layers[1], reverse: false)], k)
        XCTAssertEqual(recorder.seen[RecorderKey(layer: layers[1], reverse: true)], k)
        XCTAssertEqual(recorder.seen.count, 4, "only the chosen layers are recorded")
        XCTAssertLessThanOrEqual(recorder.worst, 1e-5)
    }
}

struct RecorderKey: Hashable { let layer: MambaLayerID; let reverse: Bool }

/// For every recorded sequence: α·x (per channel) against `selectiveScan` of the same operands
/// with D = 0, relative to the output's size; counts the sequences seen per layer and direction.
final class CheckingRecorder: ScanRecorder, @unchecked Sendable {
    let layers: Set<MambaLayerID>
    private let lock = NSLock()
    private(set) var seen: [RecorderKey: Int] = [:]
    private(set) var worst: Float = 0

    init(layers: Set<MambaLayerID>) { self.layers = layers }

    func records(_ layer: MambaLayerID) -> Bool { layers.contains(layer) }

    func record(_ group: ScanGroup) {
        let t = group.length, e = group.channels, m = group.states
        var localWorst: Float = 0
        let zeros = [Float](repeating: 0, count: e)
        for i in 0..<group.sequences {
            var ops = group.operands(i)
            var y = [Float](repeating: 0, count: t * e)
            let state = ScratchBuffer(capacity: m * e), decay = ScratchBuffer(capacity: m * 8)
            zeros.withUnsafeBufferPointer { z in
                ops.d = z.baseAddress!
                y.withUnsafeMutableBufferPointer {
                    selectiveScan(ops, length: t, channels: e, states: m, reverse: group.reverse, output: .store,
                                  state: state.pointer, decay: decay.pointer, into: $0.baseAddress!, ldy: e)
                }
            }
            let x = (0..<(t * e)).map { ops.x[$0 / e * ops.ldx + $0 % e] }
            let scale = max(1, y.map { abs($0) }.max() ?? 0)
            for ch in 0..<e {
                var alpha = [Float](repeating: 0, count: t * t)
                alpha.withUnsafeMutableBufferPointer {
                    hiddenAttention(ops, length: t, channels: e, states: m, reverse: group.reverse,
                                    channelRange: ch..<(ch + 1), scratch: AttentionScratch(), accumulatingInto: $0.baseAddress!)
                }
                let ya = applyAttention(alpha, to: x, channel: ch, length: t, channels: e)
                for s in 0..<t { localWorst = max(localWorst, abs(ya[s] - y[s * e + ch]) / scale) }
            }
        }
        lock.lock()
        defer { lock.unlock() }
        seen[RecorderKey(layer: group.layer, reverse: group.reverse), default: 0] += group.sequences
        worst = max(worst, localWorst)
    }
}
