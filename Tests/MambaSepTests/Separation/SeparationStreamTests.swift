import Foundation
import XCTest
@testable import MambaSep

/// The resampling stream and whole-file separation.
final class SeparationStreamTests: XCTestCase {
    /// Returns the window itself and its negation (a transparent "separator").
    final class PassThrough: WindowSeparator {
        var speakers: Int { 2 }
        func separate(_ w: [Float]) -> [[Float]] { [w, w.map { -$0 }] }
    }

    func testResampledStreamHasExactLengthAndIsTransparent() throws {
        for (rate, n) in [(16000, 16000 * 5 + 17), (44100, 44100 * 3 + 1), (8000, 8000 * 4 + 3), (11025, 5)] {
            let x = (0..<n).map { Float(0.5 * sin(2 * Double.pi * 440 * Double($0) / Double(rate))) }
            let s = try SeparationStream(separator: PassThrough(), modelRate: 8000, inputRate: rate,
                                         settings: WindowSettings(windowSeconds: 1, overlapSeconds: 0.25))
            var out = [[Float]](repeating: [], count: 2)
            var i = 0, block = 1
            while i < n {
                let part = try s.push(Array(x[i..<min(i + block, n)]))
                for c in 0..<2 { out[c] += part[c] }
                i += block
                block = block * 3 % 7919 + 1                       // irregular block sizes
            }
            let last = try s.finish()
            for c in 0..<2 { out[c] += last[c] }
            XCTAssertEqual(out.map(\.count), [n, n], "rate \(rate)")
            guard n > 2 * rate else { continue }
            // Away from the ends, a 440 Hz tone survives down- and up-sampling almost unchanged.
            let mid = Array(rate / 2..<(n - rate / 2))
            let err0 = mid.map { abs(out[0][$0] - x[$0]) }.max()!, err1 = mid.map { abs(out[1][$0] + x[$0]) }.max()!
            XCTAssertLessThan(err0, 2e-3, "rate \(rate)")
            XCTAssertLessThan(err1, 2e-3, "rate \(rate)")
        }
    }

    func testSeparateFileReportsClippingAndFloatOutputKeepsFullRange() throws {
        let dir = try makeTempDir(self)
        let n = 8000
        // A float WAV input peaking at 1.5: the pass-through "separator" returns it (and its
        // negation), so 16-bit outputs must clip exactly the samples beyond ±1.
        let x = (0..<n).map { Float(1.5 * sin(2 * Double.pi * 200 * Double($0) / 8000)) }
        let input = dir.appendingPathComponent("loud.wav").path
        try writeAudio(x, to: input, sampleRate: 8000, format: .wavFloat)
        let beyond = x.filter { abs($0) > 1 }.count
        let pcm = ["a_s1.wav", "a_s2.wav"].map { dir.appendingPathComponent($0).path }
        let clipped = try separateFile(input, outputs: pcm, separator: PassThrough(), modelRate: 8000)
        XCTAssertGreaterThan(beyond, 1000)
        // The windowed pass-through is transparent to rounding, so the count matches within a few
        // samples whose value sits at ±1 within float rounding.
        for c in clipped { XCTAssertEqual(Double(c), Double(beyond), accuracy: 8) }
        let flt = ["b_s1.wav", "b_s2.wav"].map { dir.appendingPathComponent($0).path }
        XCTAssertEqual(try separateFile(input, outputs: flt, separator: PassThrough(), modelRate: 8000,
                                        format: .wavFloat), [0, 0])
        let y = try AudioFile.read(flt[0]).samples
        XCTAssertEqual(y.map { abs($0) }.max()!, 1.5, accuracy: 1e-3)
    }

    func testSeparateFileWritesEveryOutputAtInputRateAndLength() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mambasep-sep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try DPMamba(file: try SafeTensorsFile(data: randomModelBuilder(tinyConfig(speakers: 3), seed: 9).build()))
        let rate = 16000, n = 16000 * 2 + 321
        var rng = EngineRNG(seed: 10)
        let x = rng.floats(n, -0.3, 0.3)
        let input = dir.appendingPathComponent("mix.wav").path
        try writeAudio(x, to: input, sampleRate: rate, format: .wav16)
        let outs = (1...3).map { dir.appendingPathComponent("mix_s\($0).wav").path }
        var fractions: [Double] = []
        try separateFile(input, outputs: outs, separator: Separator(model: model), modelRate: 8000,
                         settings: WindowSettings(windowSeconds: 0.75, overlapSeconds: 0.25), blockFrames: 4096,
                         progress: { fractions.append($0) })
        for o in outs {
            let info = try AudioFile.info(o)
            XCTAssertEqual(info.sampleRate, rate)
            XCTAssertEqual(info.frameCount, n)
            let y = try AudioFile.read(o).samples
            XCTAssertTrue(y.contains { $0 != 0 })
        }
        XCTAssertEqual(fractions.last, 1)
        XCTAssertEqual(fractions, fractions.sorted())

        XCTAssertThrowsError(try separateFile(input, outputs: [outs[0]], separator: Separator(model: model), modelRate: 8000)) {
            XCTAssertEqual($0 as? SeparationError, .outputCount(expected: 3, got: 1))
        }
        XCTAssertThrowsError(try separateFile(dir.appendingPathComponent("missing.wav").path, outputs: outs,
                                              separator: Separator(model: model), modelRate: 8000)) {
            XCTAssertTrue($0 is AudioError)
        }
        let bad = dir.appendingPathComponent("no/such/folder/a.wav").path
        XCTAssertThrowsError(try separateFile(input, outputs: [bad, bad, bad], separator: Separator(model: model), modelRate: 8000))
    }
}
