import Foundation
import XCTest
@testable import MambaSep

/// `mambasep stream` through the built binary: WAV and raw pipes, outputs, truncation, bad
/// headers, SIGPIPE, usage errors. A tiny random model keeps the debug build fast.
final class StreamCLITests: XCTestCase {
    private var dir: URL!
    private var modelPath: String!
    /// Small windows so the debug build separates quickly.
    private let fast = ["--block", "0.25", "--window", "0.75", "--lookahead", "0.125", "--threads", "1"]

    override func setUpWithError() throws {
        dir = try makeTempDir(self)
        modelPath = dir.appendingPathComponent("tiny.safetensors").path
        try randomModelBuilder(tinyConfig(), seed: 3).build().write(to: URL(fileURLWithPath: modelPath))
    }

    /// Runs `mambasep stream --model <tiny> ARGS` with `input` on stdin.
    private func run(_ args: [String], input: [UInt8], stdoutLimit: Int? = nil, stdoutFile: FileHandle? = nil) throws -> CLIResult {
        try runMambasep(["stream", "--model", modelPath] + args, input: input, stdoutLimit: stdoutLimit, stdoutFile: stdoutFile)
    }

    private func s16(_ x: [Float]) -> [UInt8] { s16Bytes([x]) }

    private func mixture(_ n: Int, rate: Int) -> [Float] {
        var rng = SeededRandom(seed: 7)
        return (0..<n).map { i in Float(0.3 * sin(Double(i) * 0.05)) + rng.floats(1, -0.1, 0.1)[0] }
    }

    func testWAVInGivesInterleavedWAVOutAndVerboseReportsLatency() throws {
        let n = 16000 + 321
        let r = try run(fast + ["--verbose"], input: s16WAVHeader(rate: 16000) + s16(mixture(n, rate: 16000)))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("stream: algorithmic latency 0.4"), r.stderr)   // 0.375 s + resampling
        XCTAssertTrue(r.stderr.contains("windows"), r.stderr)
        let back = try PCMStreamReader(wav: MemorySource(r.output))
        XCTAssertEqual(back.format, PCMStreamFormat(sampleRate: 16000, channels: 2, encoding: .s16))
        let frames = try back.readInterleaved(maxFrames: 100_000).count / 2
        XCTAssertEqual(frames, n)
    }

    func testRawInGivesRawOutByteWiseAndOtherEncodings() throws {
        let x = mixture(6000, rate: 8000)
        let f32 = x.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        var r = try run(fast + ["--rate", "8000", "--encoding", "f32le"], input: f32)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        XCTAssertEqual(r.output.count, 6000 * 2 * 4)                        // raw f32, 2 speakers
        // Stereo raw s16 in, WAV s32 out on request.
        r = try run(fast + ["--rate", "8000", "--channels", "2", "--output-format", "wav", "--output-encoding", "s32le"],
                    input: s16(x.flatMap { [$0, -$0] }))
        XCTAssertEqual(r.status, 0, r.stderr)
        let back = try PCMStreamReader(wav: MemorySource(r.output))
        XCTAssertEqual(back.format, PCMStreamFormat(sampleRate: 8000, channels: 2, encoding: .s32))
        XCTAssertEqual(try back.readInterleaved(maxFrames: 100_000).count, 6000 * 2)
    }

    func testOutputDirWritesOneFilePerSpeaker() throws {
        let out = dir.appendingPathComponent("live").path
        let r = try run(fast + ["--output-dir", out, "--stem", "talk"], input: s16WAVHeader(rate: 8000) + s16(mixture(5000, rate: 8000)))
        for (_, info) in try assertListedAudio(r, names: ["talk_s1.wav", "talk_s2.wav"], frames: 5000) {
            XCTAssertEqual(info.channels, 1)
        }
    }

    func testTruncatedInputIsFlushedAndThePartialFrameReported() throws {
        let r = try run(fast + ["--rate", "8000", "--channels", "2"], input: s16(mixture(4000, rate: 8000)) + [1, 2, 3])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("input ended inside a frame: 3 trailing byte(s)"), r.stderr)
        XCTAssertEqual(r.output.count, 2000 * 2 * 2)
        // A WAV cut inside its header is an error; one whose data length exceeds the stream is not.
        let cut = try run(fast, input: Array(s16WAVHeader(rate: 8000).prefix(30)))
        XCTAssertEqual(cut.status, 1)
        XCTAssertTrue(cut.stderr.contains("stream ended inside the 'fmt ' chunk"), cut.stderr)
    }

    func testInvalidHeaderIsAClearErrorWithCleanStdout() throws {
        var r = try run(fast, input: Array("ID3\u{3}this is an mp3, not a wav".utf8))
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.output, [])
        XCTAssertTrue(r.stderr.hasPrefix("error: <stdin>: invalid WAV header: expected 'RIFF....WAVE'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--rate"), r.stderr)
        r = try run(fast, input: [])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("empty input"), r.stderr)
        // Empty raw input is an empty stream, not an error.
        r = try run(fast + ["--rate", "8000"], input: [])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.output, [])
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
        for args in [["--rate", "8000", "--encoding", "s8"], ["--channels", "2"], ["--encoding", "f32le"], ["--block", "1", "--window", "0.5"],
                     ["--rate", "8000", "--format", "f32le"], ["--threads", "0"],
                     ["--output-format", "mp3"], ["--rate", "0"], ["--lookahead", "-1"], ["--stem", "a/b"]] {
            let r = try run(args, input: [])
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("Error"), r.stderr)
        }
    }

    // MARK: - Issue 19 regressions

    func testModelOutputThatIsNaNIsAnErrorNotACrash() throws {
        // Finite float input near 1e38 makes the model's output NaN; speaker matching over NaN
        // scores used to index past an empty permutation (exit 139).
        let x = (0..<16000).map { Float(1e38 * sin(Double($0) * 0.05)) }
        let f32 = x.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let model = dir.appendingPathComponent("overflowing.safetensors").path
        try overflowingModelBuilder().build().write(to: URL(fileURLWithPath: model))
        let r = try runMambasep(["stream", "--model", model, "--rate", "8000", "--encoding", "f32le"] + fast, input: f32)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: <stdin>: the model's output became NaN/Inf at "), r.stderr)
        XCTAssertTrue(r.stderr.contains("far beyond full scale"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }

    func testOutputDirNeverTruncatesItsOwnInput() throws {
        // cd D && mambasep stream --output-dir . < stream_s1.wav
        let input = dir.appendingPathComponent("stream_s1.wav")
        let bytes = s16WAVHeader(rate: 8000, dataSize: 8000) + s16(mixture(4000, rate: 8000))
        try Data(bytes).write(to: input)
        let stdin = try FileHandle(forReadingFrom: input)
        let r = try runMambasep(["stream", "--model", modelPath, "--output-dir", "."] + fast, in: dir, stdinFile: stdin)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr, "error: output ./stream_s1.wav is an input of this run (<stdin>); refusing to overwrite it: choose another output folder\n")
        XCTAssertEqual(try Data(contentsOf: input), Data(bytes))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("stream_s2.wav").path))
        // Another stem works, and the input is still intact.
        let ok = try runMambasep(["stream", "--model", modelPath, "--output-dir", ".", "--stem", "again"] + fast,
                                 in: dir, stdinFile: try FileHandle(forReadingFrom: input))
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try AudioFile.info(dir.appendingPathComponent("again_s2.wav").path).frameCount, 4000)
        XCTAssertEqual(try Data(contentsOf: input), Data(bytes))
    }

    func testWindowsAreBoundedAndNegativeNumbersReachValidation() throws {
        for (args, words) in [(["--window", "1000"], "window of 1000.0 s: at most 10 s for a live stream"),
                              (["--window", "-1"], "window of -1.0 s is shorter than"),
                              (["--block", "-0.2"], "block of -0.2 s"),
                              (["--rate", "-8000"], "--rate must be between"),
                              (["--rate", "8000", "--channel", "-1"], "--channel counts from 0")] {
            let r = try run(args, input: [])
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(words), "\(args): \(r.stderr)")
        }
    }
}
