import Foundation
import XCTest
@testable import MambaSep

/// Every bad input a user can give `separate`, `stream`, `info` and `eval`, one table row each:
/// the exit status, one line on stderr that says what is wrong, nothing on stdout, and nothing
/// left on disk (no output, no temporary file, no output folder). Rows added for issue 19's
/// defects and for what the fuzz harnesses found (fuzz/findings/).
final class BadInputMatrixTests: XCTestCase {
    struct Row {
        let name: String
        let args: [String]
        var stdin: [UInt8] = []
        /// Standard input redirected from this file (relative to the test folder) instead.
        var stdinFile: String? = nil
        let status: Int32
        /// Words the one stderr line must hold.
        let says: String
    }

    func testEveryBadInputIsOneLineAnExitStatusAndNoLeftovers() throws {
        let dir = try makeTempDir(self)
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func put(_ name: String, _ bytes: Data) throws { try bytes.write(to: URL(fileURLWithPath: path(name))) }

        // Audio inputs.
        try writeAudio(sine(300, rate: 8000, count: 4000, amplitude: 0.3), to: path("good.wav"), sampleRate: 8000)
        try put("empty.wav", Data())
        try put("text.wav", Data("this is not audio at all\n".utf8))
        try put("header.wav", floatWAVBytes([], rate: 8000))
        let good = try Data(contentsOf: URL(fileURLWithPath: path("good.wav")))
        try put("cut.wav", good.prefix(good.count / 2))
        try writeAudio(sine(300, rate: 8000, count: 16000), to: path("full.flac"), sampleRate: 8000)
        let flac = try Data(contentsOf: URL(fileURLWithPath: path("full.flac")))
        try put("cut.flac", flac.prefix(flac.count / 2))
        var nan = [Float](repeating: 0.1, count: 400); nan[7] = .nan
        try put("nan.wav", floatWAVBytes(nan, rate: 8000))
        var inf = [Float](repeating: 0.1, count: 400); inf[9] = -.infinity
        try put("inf.wav", floatWAVBytes(inf, rate: 8000))
        var zeroChannels = floatWAVBytes([0.1, 0.2], rate: 8000); zeroChannels[22] = 0
        try put("zero-channels.wav", zeroChannels)
        var zeroRate = floatWAVBytes([0.1, 0.2], rate: 8000); zeroRate.replaceSubrange(24..<28, with: [0, 0, 0, 0])
        try put("zero-rate.wav", zeroRate)
        var rng = SeededRandom(seed: 19)
        try put("garbage.wav", Data((0..<3000).map { _ in UInt8(truncatingIfNeeded: Int(rng.floats(1, 0, 255)[0])) }))
        try put("loud.wav", floatWAVBytes((0..<4000).map { Float(1e38 * sin(Double($0) * 0.05)) }, rate: 8000))
        try FileManager.default.createDirectory(atPath: path("folder.wav"), withIntermediateDirectories: true)
        try writeAudio(sine(300, rate: 8000, count: 4000, amplitude: 0.3), to: path("talk.wav"), sampleRate: 8000)
        try writeAudio(sine(500, rate: 8000, count: 4000, amplitude: 0.3), to: path("talk_s1.wav"), sampleRate: 8000)
        try writeAudio([Float](repeating: 0, count: 4000), to: path("silent.wav"), sampleRate: 8000)
        try writeAudio(sine(300, rate: 16000, count: 8000), to: path("rate16k.wav"), sampleRate: 16000)
        try writeAudio(sine(300, rate: 8000, count: 3999), to: path("short.wav"), sampleRate: 8000)
        // What the audioreader fuzz harness found: a malformed Ogg Vorbis header (libvorbis leaks).
        try put("fuzz-vorbis.ogg", try Data(contentsOf: Fixtures.repoRoot.appendingPathComponent("fuzz/findings/audioreader-vorbis-leak.ogg")))

        // Models.
        let model = randomModelBuilder(tinyConfig(), seed: 3)
        let modelBytes = model.build()
        try put("tiny.safetensors", modelBytes)
        try put("cut.safetensors", modelBytes.prefix(modelBytes.count / 2))
        var huge = Data([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]); huge.append(Data(count: 64))
        try put("huge-header.safetensors", huge)
        var i64 = SafeTensorsBuilder(); i64.add("a", [1], [1])
        try put("i64.safetensors", i64.build(headerOverride: #"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,4]}}"#))
        try put("not-json.safetensors", i64.build(headerOverride: "{not json"))
        var shape = model
        let k = shape.items.firstIndex { $0.name == "masker.end_conv.weight" }!
        shape.items[k].shape = [16, 1, 16]
        try put("wrong-shape.safetensors", shape.build())
        // The JSON padded with 8 spaces (as the safetensors library pads it) and a length one short:
        // still valid JSON, and every tensor would be read one byte early.
        let h = Int(modelBytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        var short = Data()
        withUnsafeBytes(of: UInt64(h + 7).littleEndian) { short.append(contentsOf: $0) }
        short += modelBytes.subdata(in: 8..<(8 + h)) + Data(repeating: 0x20, count: 8) + modelBytes.subdata(in: (8 + h)..<modelBytes.count)
        try put("off-by-one.safetensors", short)
        var nanWeight = model
        nanWeight.items[k].values[5] = .nan
        try put("nan-weight.safetensors", nanWeight.build())
        try put("overflowing.safetensors", overflowingModelBuilder().build())
        // A stream file for `--output-dir . < stream_s1.wav`.
        try put("stream_s1.wav", Data(s16WAVHeader(rate: 8000, dataSize: 800) + s16Bytes([[Float](repeating: 0.1, count: 400)])))

        let before = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        let tiny = ["--model", "tiny.safetensors"]
        let sep = ["separate", "-o", "out"]
        let fast = ["--block", "0.25", "--window", "0.75", "--lookahead", "0.125"]
        let rawLoud = (0..<8000).flatMap { i in withUnsafeBytes(of: Float(1e38 * sin(Double(i) * 0.05)).bitPattern.littleEndian) { Array($0) } }
        let rows: [Row] = [
            // separate: inputs
            Row(name: "missing input", args: sep + ["none.wav"] + tiny, status: 1, says: "none.wav: no such file"),
            Row(name: "a folder as input", args: sep + ["folder.wav"] + tiny, status: 1, says: "folder.wav: is a directory"),
            Row(name: "empty file", args: sep + ["empty.wav"] + tiny, status: 1, says: "empty.wav: file is empty"),
            Row(name: "text", args: sep + ["text.wav"] + tiny, status: 1, says: "text.wav: not a readable audio file"),
            Row(name: "header only", args: sep + ["header.wav"] + tiny, status: 1, says: "header.wav: file holds no audio samples"),
            Row(name: "truncated WAV", args: sep + ["cut.wav"] + tiny, status: 1, says: "cut.wav: truncated"),
            Row(name: "truncated FLAC", args: sep + ["cut.flac"] + tiny, status: 1, says: "cut.flac: truncated"),
            Row(name: "NaN sample", args: sep + ["nan.wav"] + tiny, status: 1, says: "nan.wav: sample nan (not finite) at frame 7"),
            Row(name: "-Inf sample", args: sep + ["inf.wav"] + tiny, status: 1, says: "inf.wav: sample -inf (not finite) at frame 9"),
            Row(name: "zero channels", args: sep + ["zero-channels.wav"] + tiny, status: 1, says: "zero-channels.wav: not a readable audio file"),
            Row(name: "zero rate", args: sep + ["zero-rate.wav"] + tiny, status: 1, says: "zero-rate.wav: "),
            Row(name: "garbage", args: sep + ["garbage.wav"] + tiny, status: 1, says: "garbage.wav: not a readable audio file"),
            Row(name: "fuzz: malformed Ogg Vorbis", args: sep + ["fuzz-vorbis.ogg"] + tiny, status: 1, says: "fuzz-vorbis.ogg: not a readable audio file"),
            Row(name: "standard input", args: sep + ["-"] + tiny, status: 1, says: "<stdin>: standard input is not a file"),
            Row(name: "model output NaN (1e38 input)", args: sep + ["loud.wav", "--model", "overflowing.safetensors"], status: 1,
                says: "loud.wav: the model's output became NaN/Inf"),
            // separate: outputs
            Row(name: "output is an input", args: ["separate", "talk.wav", "talk_s1.wav", "-o", "."] + tiny, status: 1,
                says: "output ./talk_s1.wav is an input of this run"),
            Row(name: "output folder under a file", args: ["separate", "good.wav", "-o", "good.wav/sub"] + tiny, status: 1,
                says: "cannot create output folder good.wav/sub: good.wav is a file, not a folder"),
            Row(name: "empty output folder name", args: ["separate", "good.wav", "-o", ""] + tiny, status: 1, says: "the output folder is an empty name"),
            Row(name: "window -1", args: sep + ["good.wav", "--window", "-1"] + tiny, status: 64, says: "window -1.0 s with overlap"),
            Row(name: "window 1000", args: sep + ["good.wav", "--window", "1000"] + tiny, status: 64, says: "at most 60 s"),
            // models
            Row(name: "missing model", args: sep + ["good.wav", "--model", "none.safetensors"], status: 1, says: "no model named 'none.safetensors'"),
            Row(name: "a folder as model", args: sep + ["good.wav", "--model", "folder.wav"], status: 1, says: "folder.wav: is a folder, not a .safetensors file"),
            Row(name: "truncated model", args: sep + ["good.wav", "--model", "cut.safetensors"], status: 1, says: "truncated"),
            Row(name: "huge header length", args: sep + ["good.wav", "--model", "huge-header.safetensors"], status: 1, says: "header length"),
            Row(name: "wrong dtype", args: sep + ["good.wav", "--model", "i64.safetensors"], status: 1, says: "unsupported dtype I64"),
            Row(name: "not JSON", args: sep + ["good.wav", "--model", "not-json.safetensors"], status: 1, says: "header is not valid JSON"),
            Row(name: "wrong shape", args: sep + ["good.wav", "--model", "wrong-shape.safetensors"], status: 1,
                says: "tensor 'masker.end_conv.weight' has shape [16, 1, 16], expected [16, 16, 1]"),
            Row(name: "header length off by one", args: ["info", "--model", "off-by-one.safetensors"], status: 1, says: "is wrong or the file has trailing bytes"),
            Row(name: "NaN weight", args: ["info", "--model", "nan-weight.safetensors"], status: 1,
                says: "invalid tensor 'masker.end_conv.weight': element 5 of 256 is nan"),
            // stream
            Row(name: "stream: text without --rate", args: ["stream"] + tiny, stdin: Array("hello, this is text".utf8), status: 1,
                says: "<stdin>: "),
            Row(name: "stream: truncated header", args: ["stream"] + tiny, stdin: Array(s16WAVHeader(rate: 8000).prefix(30)), status: 1,
                says: "<stdin>: "),
            Row(name: "stream: zero channels", args: ["stream"] + tiny, stdin: wavHeader(fmt: fmtBody(channels: 0, rate: 8000)), status: 1,
                says: "<stdin>: "),
            Row(name: "stream: model output NaN", args: ["stream", "--model", "overflowing.safetensors", "--rate", "8000", "--encoding", "f32le"] + fast,
                stdin: rawLoud, status: 1, says: "<stdin>: the model's output became NaN/Inf"),
            Row(name: "stream: output is its own input", args: ["stream", "--output-dir", "."] + tiny + fast, stdinFile: "stream_s1.wav", status: 1,
                says: "output ./stream_s1.wav is an input of this run (<stdin>)"),
            Row(name: "stream: window 1000", args: ["stream", "--window", "1000"] + tiny, status: 64, says: "at most 10 s"),
            Row(name: "stream: window -1", args: ["stream", "--window", "-1"] + tiny, status: 64, says: "window of -1.0 s is shorter"),
            // eval
            Row(name: "eval: silent mixture", args: ["eval", "--ref", "good.wav", "talk.wav", "--est", "talk.wav", "good.wav", "--mix", "silent.wav"],
                status: 1, says: "silent.wav: mixture is silent"),
            Row(name: "eval: silent reference", args: ["eval", "--ref", "silent.wav", "--est", "good.wav"], status: 1, says: "silent.wav: reference is silent"),
            Row(name: "eval: other rate", args: ["eval", "--ref", "good.wav", "--est", "rate16k.wav"], status: 1, says: "rate16k.wav: sample rate 16000 Hz"),
            Row(name: "eval: other length", args: ["eval", "--ref", "good.wav", "--est", "short.wav"], status: 1, says: "(use --trim"),
            Row(name: "eval: NaN estimate", args: ["eval", "--ref", "good.wav", "--est", "nan.wav"], status: 1, says: "nan.wav: sample nan"),
        ]

        // Two at a time: each row is a process of the debug binary. Each row gets its own output
        // folder: two runs sharing a folder that one of them creates can leave it behind (the
        // other's write probe keeps it from being removed), which is not what a row tests.
        var results = [CLIResult?](repeating: nil, count: rows.count)
        var failures = [String?](repeating: nil, count: rows.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: rows.count) { i in
            let row = rows[i]
            let args = row.args.enumerated().map { k, a in k > 0 && row.args[k - 1] == "-o" && a == "out" ? "out-\(i)" : a }
            do {
                let r = try runMambasep(args, input: row.stdin, in: dir,
                                        stdinFile: try row.stdinFile.map { try FileHandle(forReadingFrom: dir.appendingPathComponent($0)) })
                lock.lock(); results[i] = r; lock.unlock()
            } catch {
                lock.lock(); failures[i] = "\(error)"; lock.unlock()
            }
        }
        for (i, row) in rows.enumerated() {
            guard let r = results[i] else { XCTFail("\(row.name): \(failures[i] ?? "did not run")"); continue }
            XCTAssertEqual(r.status, row.status, "\(row.name): \(r.stderr)")
            XCTAssertFalse(r.signalled, row.name)
            XCTAssertEqual(r.stdout, "", row.name)
            let lines = r.stderr.split(separator: "\n")
            if row.status == 64 {
                XCTAssertTrue(lines.first?.hasPrefix("Error: ") ?? false, "\(row.name): \(r.stderr)")
            } else {
                XCTAssertEqual(lines.count, 1, "\(row.name): \(r.stderr)")
                XCTAssertTrue(r.stderr.hasPrefix("error: "), "\(row.name): \(r.stderr)")
            }
            XCTAssertTrue(r.stderr.contains(row.says), "\(row.name): \(r.stderr)")
        }
        // Nothing written, nothing half-written, no folder made, no input changed.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), before)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("good.wav"))), good)
    }
}
