import Foundation
import XCTest
@testable import MambaSep

/// The forward pass's scan recorder: it changes nothing, sees every sequence of the chosen layers
/// once per direction and nothing else, and what it sees is what the scan computes with.
final class ScanRecorderTests: XCTestCase {
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

    func testAnS4DLayerIsNeverRecorded() throws {
        let model = try DPMamba(path: Fixtures.path("parity/small_mixed_noskip.safetensors"), ignoringPrefixes: ["io."])
        let layers = [MambaLayerID(block: 0, path: .intra), MambaLayerID(block: 0, path: .inter)]
        let recorder = CheckingRecorder(layers: Set(layers))
        var rng = SeededRandom(seed: 45)
        let input = rng.floats(600, -0.5, 0.5)
        XCTAssertEqual(Separator(model: model).separate(input, recorder: recorder), model.separate(input))
        XCTAssertEqual(Set(recorder.seen.keys.map(\.layer)), [layers[0]], "the inter path is S4D: no scan to record")
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
