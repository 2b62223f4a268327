import Foundation
import XCTest
@testable import MambaSep

/// `mambasep stream` through the built binary: WAV and raw pipes, outputs, truncation, bad
/// headers, SIGPIPE, usage errors. A tiny random model keeps the debug build fast.
final class StreamCLITests: XCTestCase {
    struct Result { let status: Int32; let stdout: [UInt8]; let stderr: String }

    private var dir: URL!
    private var modelPath: String!
    /// Small windows so the debug build separates quickly.
    private let fast = ["--block", "0.25", "--window", "0.75", "--lookahead", "0.125", "--threads", "1"]

    override func setUpWithError() throws {
        signal(SIGPIPE, SIG_IGN)   // feeding a child that exits early must not kill the test runner
        dir = try makeTempDir(self)
        modelPath = dir.appendingPathComponent("tiny.safetensors").path
        try randomModelBuilder(tinyConfig(), seed: 3).build().write(to: URL(fileURLWithPath: modelPath))
    }

    /// Runs the binary with `input` on stdin; reads stdout to the end, or only `stdoutLimit` bytes
    /// and then closes it (the SIGPIPE case).
    private func run(_ args: [String], input: [UInt8], stdoutLimit: Int? = nil, stdoutFile: FileHandle? = nil) throws -> Result {
        let exe = EvalCLITests.productsDirectory.appendingPathComponent("mambasep")
        guard FileManager.default.isExecutableFile(atPath: exe.path) else {
            throw XCTSkip("mambasep binary not built at \(exe.path)")
        }
        let p = Process()
        p.executableURL = exe
        p.arguments = ["stream", "--model", modelPath] + args
        let inPipe = Pipe(), out = Pipe(), err = Pipe()
        p.standardInput = inPipe
        p.standardOutput = stdoutFile ?? out
        p.standardError = err
        try p.run()
        // Feed stdin from a thread with plain write(2): EPIPE when the child quits is not fatal.
        let wfd = inPipe.fileHandleForWriting.fileDescriptor
        let feeder = Thread {
            var off = 0
            while off < input.count {
                let n = input.withUnsafeBytes { write(wfd, $0.baseAddress! + off, min(4096, input.count - off)) }
                if n <= 0 { break }
                off += n
            }
            try? inPipe.fileHandleForWriting.close()
        }
        feeder.start()
        var stdout: [UInt8] = []
        if stdoutFile != nil { try out.fileHandleForWriting.close() }   // reads below see EOF at once
        let rfd = out.fileHandleForReading.fileDescriptor
        var buf = [UInt8](repeating: 0, count: 65536)
        while stdoutLimit.map({ stdout.count < $0 }) ?? true {
            let n = buf.withUnsafeMutableBytes { read(rfd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            stdout += buf[0..<n]
        }
        if stdoutLimit != nil { try out.fileHandleForReading.close() }
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: stdout, stderr: String(decoding: e, as: UTF8.self))
    }

    private func s16(_ x: [Float]) -> [UInt8] {
        x.flatMap { v -> [UInt8] in let u = UInt16(bitPattern: Int16((v * 32767).rounded())); return [UInt8(u & 0xFF), UInt8(u >> 8)] }
    }

    /// A streaming WAV header (unknown length) for s16 mono at `rate`.
    private func wavHeader(rate: Int) -> [UInt8] {
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }
        return Array("RIFF".utf8) + le32(0xFFFF_FFFF) + Array("WAVE".utf8) + Array("fmt ".utf8) + le32(16)
            + [1, 0, 1, 0] + le32(UInt32(rate)) + le32(UInt32(rate * 2)) + [2, 0, 16, 0] + Array("data".utf8) + le32(0xFFFF_FFFF)
    }

    private func mixture(_ n: Int, rate: Int) -> [Float] {
        var rng = EngineRNG(seed: 7)
        return (0..<n).map { i in Float(0.3 * sin(Double(i) * 0.05)) + rng.floats(1, -0.1, 0.1)[0] }
    }

    func testWAVInGivesInterleavedWAVOutAndVerboseReportsLatency() throws {
        let n = 16000 + 321
        let r = try run(fast + ["--verbose"], input: wavHeader(rate: 16000) + s16(mixture(n, rate: 16000)))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("stream: algorithmic latency 0.4"), r.stderr)   // 0.375 s + resampling
        XCTAssertTrue(r.stderr.contains("windows"), r.stderr)
        let back = try PCMStreamReader(wav: MemorySource(r.stdout))
        XCTAssertEqual(back.format, PCMStreamFormat(sampleRate: 16000, channels: 2, encoding: .s16))
        let frames = try back.readInterleaved(maxFrames: 100_000).count / 2
        XCTAssertEqual(frames, n)
    }

    func testRawInGivesRawOutByteWiseAndOtherEncodings() throws {
        let x = mixture(6000, rate: 8000)
        let f32 = x.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        var r = try run(fast + ["--rate", "8000", "--format", "f32le"], input: f32)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        XCTAssertEqual(r.stdout.count, 6000 * 2 * 4)                        // raw f32, 2 speakers
        // Stereo raw s16 in, WAV s32 out on request.
        r = try run(fast + ["--rate", "8000", "--channels", "2", "--output-format", "wav", "--output-encoding", "s32le"],
                    input: s16(x.flatMap { [$0, -$0] }))
        XCTAssertEqual(r.status, 0, r.stderr)
        let back = try PCMStreamReader(wav: MemorySource(r.stdout))
        XCTAssertEqual(back.format, PCMStreamFormat(sampleRate: 8000, channels: 2, encoding: .s32))
        XCTAssertEqual(try back.readInterleaved(maxFrames: 100_000).count, 6000 * 2)
    }

    func testOutputDirWritesOneFilePerSpeaker() throws {
        let out = dir.appendingPathComponent("live").path
        let r = try run(fast + ["--output-dir", out, "--stem", "talk"], input: wavHeader(rate: 8000) + s16(mixture(5000, rate: 8000)))
        XCTAssertEqual(r.status, 0, r.stderr)
        let listed = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(listed.map { URL(fileURLWithPath: $0).lastPathComponent }, ["talk_s1.wav", "talk_s2.wav"])
        for p in listed {
            let info = try AudioFile.info(p)
            XCTAssertEqual(info.frameCount, 5000)
            XCTAssertEqual(info.channels, 1)
        }
    }

    func testTruncatedInputIsFlushedAndThePartialFrameReported() throws {
        let r = try run(fast + ["--rate", "8000", "--channels", "2"], input: s16(mixture(4000, rate: 8000)) + [1, 2, 3])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("input ended inside a frame: 3 trailing byte(s)"), r.stderr)
        XCTAssertEqual(r.stdout.count, 2000 * 2 * 2)
        // A WAV cut inside its header is an error; one whose data length exceeds the stream is not.
        let cut = try run(fast, input: Array(wavHeader(rate: 8000).prefix(30)))
        XCTAssertEqual(cut.status, 1)
        XCTAssertTrue(cut.stderr.contains("stream ended inside the 'fmt ' chunk"), cut.stderr)
    }

    func testInvalidHeaderIsAClearErrorWithCleanStdout() throws {
        var r = try run(fast, input: Array("ID3\u{3}this is an mp3, not a wav".utf8))
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stdout, [])
        XCTAssertTrue(r.stderr.hasPrefix("error: <stdin>: invalid WAV header: expected 'RIFF....WAVE'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--rate"), r.stderr)
        r = try run(fast, input: [])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("empty input"), r.stderr)
        // Empty raw input is an empty stream, not an error.
        r = try run(fast + ["--rate", "8000"], input: [])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, [])
    }

    func testReaderClosingStdoutEndsQuietlyWithSIGPIPEStatus() throws {
        // 48 kHz stereo-speaker output is 192 kB per second: far more than we read before closing.
        let r = try run(fast + ["--rate", "48000"], input: s16(mixture(48000 * 3 / 2, rate: 48000)), stdoutLimit: 1000)
        XCTAssertEqual(r.status, 141, r.stderr)
        XCTAssertEqual(r.stderr, "")
    }

    func testUnwritableStdoutIsAClearError() throws {
        guard let full = FileHandle(forWritingAtPath: "/dev/full") else { throw XCTSkip("no /dev/full") }
        let r = try run(fast + ["--rate", "8000"], input: s16(mixture(4000, rate: 8000)), stdoutFile: full)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: <stdout>: cannot write the output: write failed: No space left on device"), r.stderr)
    }

    func testUsageErrors() throws {
        for args in [["--rate", "8000", "--format", "s8"], ["--channels", "2"], ["--format", "f32le"], ["--block", "1", "--window", "0.5"],
                     ["--output-format", "mp3"], ["--rate", "0"], ["--lookahead", "-1"], ["--stem", "a/b"]] {
            let r = try run(args, input: [])
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("Error"), r.stderr)
        }
    }
}
