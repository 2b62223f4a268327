import Foundation
import XCTest
@testable import MambaSep

/// `mambasep explain` through the built binary, with a tiny random model: the two PNGs and their
/// stated sizes, the JSON, and bad inputs as one-line errors that leave no PNG behind.
final class ExplainCLITests: XCTestCase {
    private var dir: URL!
    private var modelPath: String!
    private var mix: String!

    override func setUpWithError() throws {
        dir = try makeTempDir(self)
        modelPath = dir.appendingPathComponent("tiny.safetensors").path
        try randomModelBuilder(tinyConfig(), seed: 3).build().write(to: URL(fileURLWithPath: modelPath))
        mix = dir.appendingPathComponent("talk.wav").path
        var rng = SeededRandom(seed: 8)
        try writeAudio(rng.floats(12000, -0.4, 0.4), to: mix, sampleRate: 16000, format: .wav16)     // 0.75 s
    }

    func testWritesBothPicturesWithTheSizesItStates() throws {
        let out = dir.appendingPathComponent("out").path
        var r = try runMambasep(["explain", mix, "-o", out, "--model", modelPath])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "\(out)/talk_spectrograms.png\n\(out)/talk_attention.png\n")
        XCTAssertEqual(r.stderr, "")

        r = try runMambasep(["explain", mix, "-o", out, "--model", modelPath, "--json", "--path", "inter", "--block", "1",
                             "--start", "0.25", "--duration", "0.5", "--channels", "4-11"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["spectrograms", "attention"] {
            let image = try XCTUnwrap(obj[key] as? [String: Any])
            let decoded = try RasterImage(pngPath: try XCTUnwrap(image["path"] as? String))
            XCTAssertEqual(decoded.width, image["width"] as? Int, key)
            XCTAssertEqual(decoded.height, image["height"] as? Int, key)
        }
        XCTAssertEqual(obj["sampleRate"] as? Int, 8000)
        XCTAssertEqual(obj["durationSeconds"] as? Double, 0.5)
        let maps = try XCTUnwrap(obj["maps"] as? [[String: Any]])
        XCTAssertEqual(maps.count, 1)
        XCTAssertEqual(maps[0]["layer"] as? String, "masker.blocks.1.inter.mixer")
        XCTAssertEqual(maps[0]["channels"] as? [Int], [4, 11])
        let model = try DPMamba(path: modelPath)
        let s = model.shape(samples: 4000).chunks
        XCTAssertEqual(maps[0]["shape"] as? [Int], [s, s])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(),
                       ["talk_attention.png", "talk_spectrograms.png"])
    }

    func testBadInputsAreOneLineErrorsAndLeaveNoPicture() throws {
        let out = dir.appendingPathComponent("empty-out").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let text = dir.appendingPathComponent("notes.wav").path
        try Data("not audio at all".utf8).write(to: URL(fileURLWithPath: text))
        let silent = dir.appendingPathComponent("nothing.wav").path
        try Data(s16WAVHeader(rate: 8000, dataSize: 0)).write(to: URL(fileURLWithPath: silent))
        let cases: [([String], String)] = [
            ([dir.appendingPathComponent("missing.wav").path], "missing.wav"),
            ([text], "notes.wav"),
            ([silent], "nothing.wav"),
            ([mix, "--block", "2"], "block 2 does not exist: the model has 2 blocks (0-1)"),
            ([mix, "--block", "0,7"], "block 7 does not exist"),
            ([mix, "--start", "0.75"], "start 0.75 s is outside the audio (0 to 0.75 s)"),
            ([mix, "--start", "-1"], "start -1 s is outside the audio"),
            ([mix, "--start", "0.5", "--duration", "0.5"], "runs past the end of the audio (0.75 s)"),
            ([mix, "--duration", "0"], "duration 0 s must be positive"),
            ([mix, "--duration", "31"], "longer than one explained window may be (30 s)"),
            ([mix, "--chunk", "999"], "chunk 999 does not exist"),
            ([mix, "--channels", "0-32"], "channels 0-32 are not within 0-31"),
            (["-"], "<stdin>: standard input is not a file"),
        ]
        for (args, message) in cases {
            let r = try runMambasep(["explain"] + args + ["-o", out, "--model", modelPath])
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "one line: \(r.stderr)")
            XCTAssertEqual(r.stdout, "")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), [], "\(args) left files")
        }
        // Malformed option values are usage errors.
        for args in [["--block", "x"], ["--channels", "9-2"], ["--path", "sideways"]] {
            let r = try runMambasep(["explain", mix, "-o", out, "--model", modelPath] + args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
        }
        // An output folder that is a file.
        var r = try runMambasep(["explain", mix, "-o", mix, "--model", modelPath])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("is not a folder"), r.stderr)
        // An output that is the input under another name (a hard link) is refused, untouched.
        let linked = dir.appendingPathComponent("linked").path
        try FileManager.default.createDirectory(atPath: linked, withIntermediateDirectories: true)
        XCTAssertEqual(link(mix, linked + "/talk_attention.png"), 0)
        r = try runMambasep(["explain", mix, "-o", linked, "--model", modelPath])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: output \(linked)/talk_attention.png is an input of this run"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: linked), ["talk_attention.png"])
        XCTAssertEqual(try AudioFile.info(mix).frameCount, 12000)
        // A new output folder of a failed run is removed again.
        let fresh = dir.appendingPathComponent("fresh/nested").path
        r = try runMambasep(["explain", mix, "-o", fresh, "--model", modelPath, "--block", "5"])
        XCTAssertEqual(r.status, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("fresh").path))
    }

    func testModelOutputThatIsNaNIsAnErrorAboutTheInput() throws {
        let loud = dir.appendingPathComponent("loud.wav").path
        try floatWAVBytes((0..<8000).map { Float(1e38 * sin(Double($0) * 0.05)) }, rate: 8000).write(to: URL(fileURLWithPath: loud))
        let model = dir.appendingPathComponent("overflowing.safetensors").path
        try overflowingModelBuilder().build().write(to: URL(fileURLWithPath: model))
        let out = dir.appendingPathComponent("nan-out").path
        let r = try runMambasep(["explain", loud, "-o", out, "--model", model, "--start", "0.25"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(loud): the model's output became NaN/Inf at 0.25 s"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
