import XCTest
@testable import MambaSep

/// Byte-stream reader and writer: WAV headers from pipes, raw PCM, byte-wise reads, truncation.
final class PCMStreamTests: XCTestCase {
    /// A WAV stream as `PCMStreamWriter` produces it, captured through a pipe-free temp file.
    private func wavBytes(_ channels: [[Float]], rate: Int, format: PCMSampleFormat, header: Bool = true) throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "pcmstream-\(UUID().uuidString).bin"
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd); unlink(path) }
        let w = PCMStreamWriter(fd: fd, sampleRate: rate, channels: channels.count, format: format, wavHeader: header)
        try w.write(channels: channels)
        try w.finish()
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private func ramp(_ n: Int, scale: Float = 0.5) -> [Float] { (0..<n).map { Float($0 % 200 - 100) / 100 * scale } }

    func testWAVRoundTripByteAtATime() throws {
        let a = ramp(300), b = ramp(300, scale: -0.25)
        let bytes = try wavBytes([a, b], rate: 8000, format: .s16le)
        let r = try PCMStreamReader(wav: MemorySource(bytes, chunk: 1))
        XCTAssertEqual(r.format, PCMStreamFormat(sampleRate: 8000, channels: 2, encoding: .s16))
        var got: [Float] = []
        while true { let x = try r.readInterleaved(maxFrames: 7); if x.isEmpty { break }; got += x }
        XCTAssertEqual(got.count, 600)
        for i in 0..<300 {
            XCTAssertEqual(got[2 * i], a[i], accuracy: 1.0 / 16384)
            XCTAssertEqual(got[2 * i + 1], b[i], accuracy: 1.0 / 16384)
        }
        XCTAssertEqual(r.partialFrameBytes, 0)
    }

    func testFloatWAVAndMonoDownmix() throws {
        let a = ramp(50), b = ramp(50, scale: 0.1)
        let r = try PCMStreamReader(wav: MemorySource(try wavBytes([a, b], rate: 16000, format: .f32le), chunk: 5))
        XCTAssertEqual(r.format.encoding, .f32)
        var mono: [Float] = []
        while true { let x = try r.readMono(maxFrames: 1000); if x.isEmpty { break }; mono += x }
        XCTAssertEqual(mono.count, 50)
        for i in 0..<50 { XCTAssertEqual(mono[i], (a[i] + b[i]) / 2, accuracy: 1e-7) }
    }

    func testUnknownAndWrongDataLengthIsTolerated() throws {
        var bytes = try wavBytes([ramp(100)], rate: 8000, format: .s16le)
        // Streaming writers put 0xFFFFFFFF or 0; a wrong (too large) length must not fail either.
        for size: UInt32 in [0xFFFF_FFFF, 0, 1_000_000] {
            for i in 0..<4 { bytes[40 + i] = UInt8((size >> (8 * UInt32(i))) & 0xFF) }
            let r = try PCMStreamReader(wav: MemorySource(bytes, chunk: 3))
            var n = 0
            while true { let x = try r.readMono(maxFrames: 1000); if x.isEmpty { break }; n += x.count }
            XCTAssertEqual(n, 100, "data size \(size)")
        }
    }

    func testTruncatedMidFrameFlushesWholeFramesAndReportsTheRest() throws {
        let bytes = try wavBytes([ramp(10), ramp(10)], rate: 8000, format: .s16le)
        let cut = Array(bytes.dropLast(3))  // 9 whole stereo frames + 1 byte
        let r = try PCMStreamReader(wav: MemorySource(cut, chunk: 1))
        var n = 0
        while true { let x = try r.readInterleaved(maxFrames: 4); if x.isEmpty { break }; n += x.count }
        XCTAssertEqual(n, 18)
        XCTAssertEqual(r.partialFrameBytes, 1)
    }

    func testRawFormats() throws {
        let x = ramp(64)
        for f in PCMSampleFormat.allCases {
            let bytes = try wavBytes([x], rate: 8000, format: f, header: false)
            XCTAssertEqual(bytes.count, 64 * f.bytes)
            let r = try PCMStreamReader(raw: MemorySource(bytes, chunk: 1), format: PCMStreamFormat(sampleRate: 8000, channels: 1, encoding: PCMEncoding(f)))
            var y: [Float] = []
            while true { let x = try r.readMono(maxFrames: 1000); if x.isEmpty { break }; y += x }
            XCTAssertEqual(y.count, 64)
            for i in 0..<64 { XCTAssertEqual(y[i], x[i], accuracy: f == .s16le ? 1.0 / 16384 : 1e-6) }
        }
    }

    func testInvalidHeadersAreClearErrors() {
        func err(_ b: [UInt8]) -> String? {
            do { _ = try PCMStreamReader(wav: MemorySource(b)); return nil } catch { return "\(error)" }
        }
        XCTAssertEqual(err([]), "invalid WAV header: empty input")
        XCTAssertTrue(err(Array("hello world, not a wav file".utf8))?.contains("expected 'RIFF....WAVE'") ?? false)
        XCTAssertTrue(err(Array("RIFF\0\0\0\0WAVEfm".utf8))?.contains("ended inside the chunk header") ?? false)
        var dataFirst = Array("RIFF\0\0\0\0WAVE".utf8) + Array("data".utf8) + [0, 0, 0, 0]
        XCTAssertTrue(err(dataFirst)?.contains("before 'fmt '") ?? false)
        dataFirst = Array("RIFF\0\0\0\0WAVEfmt ".utf8) + [16, 0, 0, 0, 2, 0, 1, 0, 0x40, 0x1F, 0, 0, 0, 0, 0, 0, 2, 0, 16, 0]
        XCTAssertTrue(err(dataFirst)?.contains("format tag 2") ?? false)
    }

    func testBrokenPipeIsReported() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        close(fds[0])
        let old = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, old); close(fds[1]) }
        let w = PCMStreamWriter(fd: fds[1], sampleRate: 8000, channels: 1, format: .s16le, wavHeader: true)
        XCTAssertThrowsError(try w.write(channels: [ramp(10)])) { XCTAssertEqual($0 as? PCMStreamError, .brokenPipe) }
    }
}
