import Foundation
import XCTest
@testable import MambaSep

/// The stream loop: byte-wise WAV and raw input, truncation, outputs, back-pressure, errors.
final class StreamingPipelineTests: XCTestCase {
    private let quick = WindowPlan.live(block: 0.1, window: 0.4, lookahead: 0.05)

    private func passThrough(inputRate: Int) throws -> SeparationStream {
        try SeparationStream(separator: PassThroughSeparator(), inputRate: inputRate, plan: quick)
    }

    /// A regular temp file opened for writing, and its path.
    private func tempFile(_ name: String) throws -> (fd: Int32, path: String) {
        let path = try makeTempDir(self).appendingPathComponent(name).path
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        addTeardownBlock { close(fd) }
        return (fd, path)
    }

    func testByteWiseStereoWAVGivesInterleavedWAVOfTheSameLength() throws {
        let n = 16000 + 123
        let l = sine(300, rate: 16000, count: n, amplitude: 0.4), r = sine(500, rate: 16000, count: n, amplitude: 0.2)
        let bytes = s16WAVHeader(rate: 16000, channels: 2) + s16Bytes([l, r])
        let reader = try PCMStreamReader(wav: MemorySource(bytes, chunk: 1))
        let sep = try passThrough(inputRate: 16000)
        let (fd, path) = try tempFile("out.wav")
        let writer = PCMStreamWriter(fd: fd, sampleRate: 16000, channels: 2, format: .f32le, wavHeader: true)
        let report = try runStreamingSeparation(reader: reader, stream: sep, output: .interleaved(writer))
        XCTAssertEqual(report.framesIn, n)
        XCTAssertEqual(report.partialFrameBytes, 0)
        XCTAssertGreaterThanOrEqual(report.windows, 10)
        let back = try AudioFile.readChannels(path)
        XCTAssertEqual(back.sampleRate, 16000)
        XCTAssertEqual(back.channels.map(\.count), [n, n])
        // Pass-through of the mono mix (band-limited to 4 kHz by the 8 kHz model rate: these tones pass).
        let mix = (0..<n).map { (l[$0] + r[$0]) / 2 }
        let mid = Array(2000..<(n - 2000))
        XCTAssertLessThan(mid.map { abs(back.channels[0][$0] - mix[$0]) }.max()!, 3e-3)
        XCTAssertLessThan(mid.map { abs(back.channels[1][$0] + mix[$0]) }.max()!, 3e-3)
    }

    func testRawInputTruncatedMidFrameIsFlushedAndReported() throws {
        let x = sine(200, rate: 8000, count: 5000, amplitude: 0.3)
        let bytes = s16Bytes([x, x]) + [0x12, 0x34, 0x56]           // 3 bytes of a 4-byte frame
        let reader = try PCMStreamReader(raw: MemorySource(bytes, chunk: 5), format: PCMStreamFormat(sampleRate: 8000, channels: 2, encoding: .s16))
        let sep = try passThrough(inputRate: 8000)
        let (fd, path) = try tempFile("out.raw")
        let writer = PCMStreamWriter(fd: fd, sampleRate: 8000, channels: 2, format: .s16le, wavHeader: false)
        let report = try runStreamingSeparation(reader: reader, stream: sep, output: .interleaved(writer), channel: .channel(1))
        XCTAssertEqual(report.framesIn, 5000)
        XCTAssertEqual(report.partialFrameBytes, 3)
        let out = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(out.count, 5000 * 2 * 2)
        let back = try PCMStreamReader(raw: MemorySource(Array(out)), format: PCMStreamFormat(sampleRate: 8000, channels: 2, encoding: .s16))
        let y = try back.readMono(maxFrames: 10000, channel: .channel(0))
        XCTAssertLessThanOrEqual(maxAbsError(y, x), 2.0 / 32767)      // the last samples were flushed too
    }

    func testPerSpeakerFilesGrowAsValidWAVs() throws {
        let x = sine(440, rate: 8000, count: 8000, amplitude: 0.5)
        let reader = try PCMStreamReader(wav: MemorySource(s16WAVHeader(rate: 8000) + s16Bytes([x]), chunk: 4096))
        let sep = try passThrough(inputRate: 8000)
        let dir = try makeTempDir(self)
        let paths = ["s1.wav", "s2.wav"].map { dir.appendingPathComponent($0).path }
        let writers = try paths.map { try PCMStreamWriter(path: $0, sampleRate: 8000, channels: 1, format: .s16le, wavHeader: true) }
        _ = try runStreamingSeparation(reader: reader, stream: sep, output: .perSpeaker(writers))
        let s1 = try AudioFile.read(paths[0]).samples, s2 = try AudioFile.read(paths[1]).samples
        XCTAssertEqual(s1.count, 8000)
        XCTAssertLessThanOrEqual(maxAbsError(s1, x), 2.0 / 32767)
        XCTAssertLessThanOrEqual(maxAbsError(s2, x.map { -$0 }), 2.0 / 32767)
        // A file that cannot be created is an error naming it.
        XCTAssertThrowsError(try PCMStreamWriter(path: dir.appendingPathComponent("no/such.wav").path, sampleRate: 8000,
                                                 channels: 1, format: .s16le, wavHeader: true)) {
            XCTAssertTrue("\($0)".contains("no/such.wav: cannot create: No such file"), "\($0)")
        }
    }

    func testQueueIsBoundedWhenInputOutrunsSeparation() throws {
        let x = [Float](repeating: 0.1, count: 8000 * 8)
        let reader = try PCMStreamReader(raw: MemorySource(s16Bytes([x])), format: PCMStreamFormat(sampleRate: 8000, channels: 1, encoding: .s16))
        let sep = try SeparationStream(separator: SlowSeparator(microseconds: 3000), inputRate: 8000,
                                       plan: .live(block: 0.02, window: 0.1, lookahead: 0))
        let (fd, _) = try tempFile("out.raw")
        let report = try runStreamingSeparation(reader: reader, stream: sep,
                                                output: .interleaved(PCMStreamWriter(fd: fd, sampleRate: 8000, channels: 1, format: .s16le, wavHeader: false)),
                                                readFrames: 256, maxQueuedSeconds: 0.25)
        XCTAssertEqual(report.framesIn, x.count)
        XCTAssertLessThanOrEqual(report.maxQueuedFrames, 2000 + 256)
    }

    func testReaderErrorsStopTheStreamAfterWritingWhatWasSeparated() throws {
        final class Failing: ByteSource {
            var left = 8000 * 2
            func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
                if left == 0 { throw PCMStreamError.io("read failed: device gone") }
                let n = min(left, buffer.count)
                for i in 0..<n { buffer[i] = 0 }
                left -= n
                return n
            }
        }
        let reader = try PCMStreamReader(raw: Failing(), format: PCMStreamFormat(sampleRate: 8000, channels: 1, encoding: .s16))
        let sep = try passThrough(inputRate: 8000)
        let (fd, path) = try tempFile("out.raw")
        XCTAssertThrowsError(try runStreamingSeparation(
            reader: reader, stream: sep,
            output: .interleaved(PCMStreamWriter(fd: fd, sampleRate: 8000, channels: 2, format: .s16le, wavHeader: false)))) {
            XCTAssertEqual($0 as? PCMStreamError, .io("read failed: device gone"))
        }
        let written = try Data(contentsOf: URL(fileURLWithPath: path)).count
        XCTAssertGreaterThan(written, 0)
        XCTAssertLessThanOrEqual(written, 8000 * 2 * 2)
    }

    func testClosedOutputPipeIsBrokenPipe() throws {
        let fd = pipeWithoutReader(self)
        let reader = try PCMStreamReader(raw: MemorySource(s16Bytes([[Float](repeating: 0.1, count: 4000)])),
                                         format: PCMStreamFormat(sampleRate: 8000, channels: 1, encoding: .s16))
        let sep = try passThrough(inputRate: 8000)
        XCTAssertThrowsError(try runStreamingSeparation(
            reader: reader, stream: sep,
            output: .interleaved(PCMStreamWriter(fd: fd, sampleRate: 8000, channels: 2, format: .s16le, wavHeader: true)))) {
            XCTAssertEqual($0 as? PCMStreamError, .brokenPipe)
        }
    }

    func testChannelOutOfRangeAndRateMismatchAreErrors() throws {
        let reader = try PCMStreamReader(raw: MemorySource([]), format: PCMStreamFormat(sampleRate: 8000, channels: 2, encoding: .s16))
        let sep = try passThrough(inputRate: 16000)
        let (fd, _) = try tempFile("x")
        let out = StreamingOutput.interleaved(PCMStreamWriter(fd: fd, sampleRate: 8000, channels: 2, format: .s16le, wavHeader: false))
        XCTAssertThrowsError(try runStreamingSeparation(reader: reader, stream: sep, output: out, channel: .channel(2))) {
            XCTAssertTrue("\($0)".contains("channel 2"), "\($0)")
        }
        XCTAssertThrowsError(try runStreamingSeparation(reader: reader, stream: sep, output: out)) {
            XCTAssertTrue("\($0)".contains("16000 Hz"), "\($0)")
        }
    }
}
