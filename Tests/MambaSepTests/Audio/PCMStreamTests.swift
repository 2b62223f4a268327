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
        let w = PCMStreamWriter(fd: pipeWithoutReader(self), sampleRate: 8000, channels: 1, format: .s16le, wavHeader: true)
        XCTAssertThrowsError(try w.write(channels: [ramp(10)])) { XCTAssertEqual($0 as? PCMStreamError, .brokenPipe) }
    }

    // MARK: Real descriptors

    /// Writes `bytes` into a new pipe from a background thread, `piece` bytes at a time.
    private func pipeFeeding(_ bytes: [UInt8], piece: Int) -> Int32 {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let w = fds[1]
        let t = Thread {
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeBytes { write(w, $0.baseAddress! + off, min(piece, bytes.count - off)) }
                if n <= 0 { break }
                off += n
            }
            close(w)
        }
        t.start()
        return fds[0]
    }

    func testWAVThroughAPipeInSmallWrites() throws {
        let x = sine(250, rate: 8000, count: 4000)
        let fd = pipeFeeding(Array(floatWAVBytes(x, rate: 8000)), piece: 3)   // header split too
        defer { close(fd) }
        let r = try PCMStreamReader(wav: FileDescriptorSource(fd: fd))
        XCTAssertEqual(r.format, PCMStreamFormat(sampleRate: 8000, channels: 1, encoding: .f32))
        var y: [Float] = []
        while true { let b = try r.readMono(maxFrames: 512); if b.isEmpty { break }; y += b }
        XCTAssertEqual(y, x)
    }

    func testRawStereoFromADescriptorPicksAChannel() throws {
        // Stereo s16le: left = 16384 (0.5), right = -8192 (-0.25), 100 frames.
        var bytes: [UInt8] = []
        for _ in 0..<100 { bytes += [0x00, 0x40, 0x00, 0xE0] }
        let fd = pipeFeeding(bytes, piece: 7)
        defer { close(fd) }
        let r = try PCMStreamReader(raw: FileDescriptorSource(fd: fd), format: PCMStreamFormat(sampleRate: 16000, channels: 2, encoding: .s16))
        var right: [Float] = []
        while true { let b = try r.readMono(maxFrames: 33, channel: .channel(1)); if b.isEmpty { break }; right += b }
        XCTAssertEqual(right, [Float](repeating: -0.25, count: 100))
        XCTAssertThrowsError(try PCMStreamReader(raw: MemorySource([]), format: PCMStreamFormat(sampleRate: 0, channels: 1, encoding: .s16)))
        XCTAssertThrowsError(try PCMStreamReader(raw: MemorySource([]), format: PCMStreamFormat(sampleRate: 8000, channels: 0, encoding: .s16)))
    }

    // MARK: More WAV layouts

    func testOtherEncodingsAndChunksBeforeTheData() throws {
        // 24-bit PCM behind a LIST chunk of odd size (padded to even) and the data length 0.
        let list = Array("LIST".utf8) + [5, 0, 0, 0] + Array("INFOx".utf8) + [0]
        var bytes = wavHeader(fmt: fmtBody(tag: 1, channels: 1, rate: 22050, bits: 24), extra: list, dataSize: 0)
        bytes += [0x00, 0x00, 0x40, 0x00, 0x00, 0xC0]                  // 0.5, -0.5
        var r = try PCMStreamReader(wav: MemorySource(bytes, chunk: 1))
        XCTAssertEqual(r.format, PCMStreamFormat(sampleRate: 22050, channels: 1, encoding: .s24))
        XCTAssertEqual(try r.readMono(maxFrames: 10), [0.5])     // a read returns the whole frames at hand
        XCTAssertEqual(try r.readMono(maxFrames: 10), [-0.5])
        XCTAssertEqual(try r.readMono(maxFrames: 10), [])
        // 8-bit unsigned.
        bytes = wavHeader(fmt: fmtBody(tag: 1, channels: 1, rate: 8000, bits: 8), dataSize: 3) + [128, 192, 64, 99, 99]
        r = try PCMStreamReader(wav: MemorySource(bytes))
        XCTAssertEqual(try r.readMono(maxFrames: 10), [0, 0.5, -0.5])     // the data length ends it
        XCTAssertEqual(try r.readMono(maxFrames: 10), [])
        // WAVE_FORMAT_EXTENSIBLE with a float sub-format.
        var ext = fmtBody(tag: 0xFFFE, channels: 1, rate: 8000, bits: 32) + [22, 0, 32, 0, 4, 0, 0, 0]
        ext += [3, 0] + [UInt8](repeating: 0, count: 14)
        bytes = wavHeader(fmt: ext) + Array(withUnsafeBytes(of: Float(0.75).bitPattern.littleEndian) { Array($0) })
        r = try PCMStreamReader(wav: MemorySource(bytes, chunk: 2))
        XCTAssertEqual(r.format.encoding, .f32)
        XCTAssertEqual(try r.readMono(maxFrames: 10), [0.75])
        // An absurdly large chunk before the data cannot be skipped on a pipe.
        bytes = Array("RIFF\0\0\0\0WAVE".utf8) + Array("junk".utf8) + [0, 0, 0, 0x7F]
        XCTAssertThrowsError(try PCMStreamReader(wav: MemorySource(bytes))) {
            XCTAssertTrue("\($0)".contains("'junk'"), "\($0)")
        }
        // Zero channels / zero rate.
        XCTAssertThrowsError(try PCMStreamReader(wav: MemorySource(wavHeader(fmt: fmtBody(tag: 1, channels: 0, rate: 8000, bits: 16)))))
        XCTAssertThrowsError(try PCMStreamReader(wav: MemorySource(wavHeader(fmt: fmtBody(tag: 1, channels: 1, rate: 0, bits: 16)))))
    }

    // MARK: Writer

    func testGrowingFileIsAValidWAVAfterEveryWrite() throws {
        let dir = try makeTempDir(self)
        let path = dir.appendingPathComponent("grow.wav").path
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        defer { close(fd) }
        let w = PCMStreamWriter(fd: fd, sampleRate: 8000, channels: 2, format: .s16le, wavHeader: true)
        var written = 0
        var left: [Float] = [], right: [Float] = []
        for n in [0, 100, 1, 250] {
            try w.write(channels: [ramp(n), ramp(n, scale: -0.5)])
            left += ramp(n); right += ramp(n, scale: -0.5)
            written += n
            guard written > 0 else { continue }   // libsndfile refuses a WAV without frames
            // libsndfile (which rejects a length longer than the file) sees exactly what was written.
            let info = try AudioFile.info(path)
            XCTAssertEqual(info.frameCount, written)
            XCTAssertEqual(info.channels, 2)
        }
        try w.finish()
        let back = try AudioFile.readChannels(path)
        XCTAssertEqual(back.channels.map(\.count), [351, 351])
        XCTAssertLessThanOrEqual(maxAbsError(back.channels[0], left), 1.0 / 16384)
        XCTAssertLessThanOrEqual(maxAbsError(back.channels[1], right), 1.0 / 16384)
    }

    func testAppendedStreamKeepsTheStreamingHeader() throws {
        let dir = try makeTempDir(self)
        let path = dir.appendingPathComponent("append.wav").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])))
        let fd = open(path, O_WRONLY | O_APPEND)
        defer { close(fd) }
        let w = PCMStreamWriter(fd: fd, sampleRate: 8000, channels: 1, format: .f32le, wavHeader: true)
        try w.write(channels: [[0.5, .nan, 2]])
        try w.finish()
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(Array(bytes[0..<3]), [1, 2, 3])
        XCTAssertEqual(Array(bytes[(3 + 40)..<(3 + 44)]), [0xFF, 0xFF, 0xFF, 0xFF])   // not patched
        let r = try PCMStreamReader(wav: MemorySource(Array(bytes.dropFirst(3))))
        XCTAssertEqual(try r.readMono(maxFrames: 10), [0.5, 0, 2])                   // NaN written as 0
    }

    func testIntegerOutputClipsAndRounds() throws {
        let bytes = try wavBytes([[1.5, -2, 0.5, -0.5, .nan]], rate: 8000, format: .s16le, header: false)
        let v = stride(from: 0, to: bytes.count, by: 2).map { Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8) }
        XCTAssertEqual(v, [32767, -32767, 16384, -16384, 0])
    }
}
