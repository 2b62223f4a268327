import Foundation
import XCTest
@testable import MambaSep

/// `separateFile`: outputs at the input's rate and length, clipping, errors.
final class FileSeparationTests: XCTestCase {
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
        let clipped = try separateFile(input, outputs: pcm, separator: PassThroughSeparator())
        XCTAssertGreaterThan(beyond, 1000)
        // The windowed pass-through is transparent to rounding, so the count matches within a few
        // samples whose value sits at ±1 within float rounding.
        for c in clipped { XCTAssertEqual(Double(c), Double(beyond), accuracy: 8) }
        let flt = ["b_s1.wav", "b_s2.wav"].map { dir.appendingPathComponent($0).path }
        XCTAssertEqual(try separateFile(input, outputs: flt, separator: PassThroughSeparator(),
                                        format: .wavFloat), [0, 0])
        let y = try AudioFile.read(flt[0]).samples
        XCTAssertEqual(y.map { abs($0) }.max()!, 1.5, accuracy: 1e-3)
    }

    func testSeparateFileWritesEveryOutputAtInputRateAndLength() throws {
        let dir = try makeTempDir(self)
        let model = try DPMamba(file: try SafeTensorsFile(data: randomModelBuilder(tinyConfig(speakers: 3), seed: 9).build()))
        let rate = 16000, n = 16000 * 2 + 321
        var rng = SeededRandom(seed: 10)
        let x = rng.floats(n, -0.3, 0.3)
        let input = dir.appendingPathComponent("mix.wav").path
        try writeAudio(x, to: input, sampleRate: rate, format: .wav16)
        let outs = (1...3).map { dir.appendingPathComponent("mix_s\($0).wav").path }
        var fractions: [Double] = []
        try separateFile(input, outputs: outs, separator: Separator(model: model),
                         plan: .offline(window: 0.75, overlap: 0.25), blockFrames: 4096,
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

        XCTAssertThrowsError(try separateFile(input, outputs: [outs[0]], separator: Separator(model: model))) {
            XCTAssertEqual($0 as? SeparationError, .outputCount(expected: 3, got: 1))
        }
        XCTAssertThrowsError(try separateFile(dir.appendingPathComponent("missing.wav").path, outputs: outs,
                                              separator: Separator(model: model))) {
            XCTAssertTrue($0 is AudioError)
        }
        let bad = dir.appendingPathComponent("no/such/folder/a.wav").path
        XCTAssertThrowsError(try separateFile(input, outputs: [bad, bad, bad], separator: Separator(model: model)))
    }

    func testNonFiniteInputIsAnErrorNamingTheFrameAndLeavesNoOutput() throws {
        let dir = try makeTempDir(self)
        var x = [Float](repeating: 0.1, count: 20000)
        x[15000] = .nan
        let input = dir.appendingPathComponent("nan.wav").path
        try floatWAVBytes(x, rate: 8000).write(to: URL(fileURLWithPath: input))
        let outs = ["n_s1.wav", "n_s2.wav"].map { dir.appendingPathComponent($0).path }
        XCTAssertThrowsError(try separateFile(input, outputs: outs, separator: PassThroughSeparator(), blockFrames: 4096)) {
            XCTAssertEqual(($0 as? AudioError)?.kind, .nonFinite)
            XCTAssertTrue("\($0)".hasPrefix("\(input): sample nan (not finite) at frame 15000"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["nan.wav"])
    }
}
