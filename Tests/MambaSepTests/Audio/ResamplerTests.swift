import Foundation
import XCTest
@testable import MambaSep

/// libsoxr resampling: accuracy, exact lengths, streaming equals whole-buffer.
final class ResamplerTests: XCTestCase {
    /// 8 kHz → 16 kHz → 8 kHz of a 440 Hz sine returns within 1e-3, compared away from the first
    /// and last 200 samples (25 ms) where the band-limiting filter sees the signal's hard edges.
    func testSineRoundTrip8k16k8k() throws {
        let x = sine(440, rate: 8000, count: 8000, amplitude: 0.5)
        let up = try Resampler.resample(x, from: 8000, to: 16000)
        XCTAssertEqual(up.count, 16000)
        let down = try Resampler.resample(up, from: 16000, to: 8000)
        XCTAssertEqual(down.count, 8000)
        let edge = 200
        XCTAssertLessThan(maxAbsError(Array(x[edge..<(8000 - edge)]), Array(down[edge..<(8000 - edge)])), 1e-3)
        // The upsampled signal is the same sine at 16 kHz (checks time alignment, not just the loop).
        let ref16 = sine(440, rate: 16000, count: 16000, amplitude: 0.5)
        XCTAssertLessThan(maxAbsError(Array(ref16[400..<15600]), Array(up[400..<15600])), 1e-3)
    }

    func testExactOutputLengths() throws {
        for (n, from, to) in [(1, 8000, 16000), (7, 16000, 8000), (8001, 8000, 16000), (44100, 44100, 8000), (3, 8000, 44100)] {
            let y = try Resampler.resample([Float](repeating: 0.1, count: n), from: from, to: to)
            XCTAssertEqual(y.count, Int((Double(n) * Double(to) / Double(from)).rounded()), "\(n) \(from)→\(to)")
        }
        XCTAssertEqual(try Resampler.resample([], from: 8000, to: 16000), [])
    }

    func testStreamingMatchesWholeBuffer() throws {
        var rng = SeededRandom(seed: 3)
        let x = (0..<20000).map { _ in Float(rng.gaussian() * 0.1) }
        let whole = try Resampler.resample(x, from: 8000, to: 16000)
        let r = try Resampler(from: 8000, to: 16000)
        var streamed: [Float] = []
        var i = 0
        var sizes = [1, 17, 1000, 4096, 333]
        while i < x.count {
            let n = min(sizes.first!, x.count - i)
            sizes.append(sizes.removeFirst())
            streamed += try r.process(Array(x[i..<(i + n)]))
            i += n
        }
        streamed += try r.flush()
        XCTAssertEqual(streamed.count, whole.count)
        XCTAssertLessThan(maxAbsError(streamed, whole), 1e-6)
        XCTAssertThrowsError(try r.process([0]), "process after flush is an error")
        XCTAssertEqual(try r.flush(), [])
    }

    func testEqualRatesPassThroughAndStereo() throws {
        let x = sine(100, rate: 8000, count: 100)
        XCTAssertEqual(try Resampler.resample(x, from: 8000, to: 8000), x)
        // Stereo interleaved: each channel is resampled independently.
        let l = sine(200, rate: 8000, count: 4000), r = sine(300, rate: 8000, count: 4000, amplitude: 0.3)
        var inter = [Float](); for t in 0..<4000 { inter += [l[t], r[t]] }
        let y = try Resampler.resample(inter, from: 8000, to: 16000, channels: 2)
        XCTAssertEqual(y.count, 16000)
        let yl = stride(from: 0, to: y.count, by: 2).map { y[$0] }
        let yr = stride(from: 1, to: y.count, by: 2).map { y[$0] }
        XCTAssertLessThan(maxAbsError(yl, try Resampler.resample(l, from: 8000, to: 16000)), 1e-6)
        XCTAssertLessThan(maxAbsError(yr, try Resampler.resample(r, from: 8000, to: 16000)), 1e-6)
        XCTAssertThrowsError(try Resampler(from: 8000, to: 16000, channels: 2).process([1, 2, 3]))
    }

    func testReadWithTargetRate() throws {
        let dir = try makeTempDir(self)
        let p = dir.appendingPathComponent("s.wav").path
        try writeAudio(sine(440, rate: 16000, count: 16000), to: p, sampleRate: 16000, format: .wavFloat)
        let a = try AudioFile.read(p, sampleRate: 8000, blockFrames: 777)
        XCTAssertEqual(a.sampleRate, 8000)
        XCTAssertEqual(a.samples.count, 8000)
        XCTAssertLessThan(maxAbsError(Array(a.samples[200..<7800]), Array(sine(440, rate: 8000, count: 8000)[200..<7800])), 1e-3)
    }
}

/// The README's streaming example: block reader → streaming resampler → streaming writer.
final class AudioPipelineTests: XCTestCase {
    func testReadmeStreamingPipelineEqualsWholeFileRead() throws {
        let dir = try makeTempDir(self)
        let src = dir.appendingPathComponent("long.flac").path
        var rng = SeededRandom(seed: 11)
        let x = (0..<100_000).map { i in Float(0.3 * sin(Double(i) * 0.05) + 0.05 * rng.gaussian()) }
        try writeAudio(x, to: src, sampleRate: 16000)
        let out = dir.appendingPathComponent("long-8k.wav").path

        let reader = try AudioReader(path: src)
        let resampler = try Resampler(from: reader.sampleRate, to: 8000)
        let writer = try AudioWriter(path: out, sampleRate: 8000, format: .wavFloat)
        while case let block = try reader.read(maxFrames: 4096), !block.isEmpty {
            try writer.write(interleaved: try resampler.process(block))
        }
        try writer.write(interleaved: try resampler.flush())
        try writer.finish()

        let streamed = try AudioFile.read(out)
        let whole = try AudioFile.read(src, sampleRate: 8000)
        XCTAssertEqual(streamed.samples.count, 50_000)
        XCTAssertLessThan(maxAbsError(streamed.samples, whole.samples), 1e-6)
    }
}
