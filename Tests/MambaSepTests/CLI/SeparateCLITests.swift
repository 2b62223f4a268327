import Foundation
import XCTest
@testable import MambaSep

/// `mambasep separate` and `mambasep info` through the built binary, with a tiny random model.
final class SeparateCLITests: XCTestCase {

    private func run(_ args: [String]) throws -> CLIResult {
        try runMambasep(args)
    }

    private var dir: URL!
    private var modelPath: String!

    override func setUpWithError() throws {
        dir = try makeTempDir(self)
        modelPath = dir.appendingPathComponent("tiny.safetensors").path
        try randomModelBuilder(tinyConfig(), seed: 3).build().write(to: URL(fileURLWithPath: modelPath))
    }

    private func mixture(_ name: String, rate: Int, count: Int) throws -> String {
        var rng = SeededRandom(seed: UInt64(count))
        let path = dir.appendingPathComponent(name).path
        try writeAudio(rng.floats(count, -0.4, 0.4), to: path, sampleRate: rate, format: .wav16)
        return path
    }

    func testSeparatesSeveralFilesAtTheirOwnRatesAndLengths() throws {
        let a = try mixture("a.wav", rate: 8000, count: 8000 + 77)
        let b = try mixture("b.flac", rate: 16000, count: 9999)
        let outDir = dir.appendingPathComponent("out/nested").path
        let r = try run(["separate", a, b, "-o", outDir, "--model", modelPath, "--window", "0.6", "--overlap", "0.2", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")                 // no progress bar when stderr is not a terminal
        let listed = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(listed.map { URL(fileURLWithPath: $0).lastPathComponent }, ["a_s1.wav", "a_s2.wav", "b_s1.wav", "b_s2.wav"])
        guard listed.count == 4 else { return }
        for (path, rate, n) in [(listed[0], 8000, 8077), (listed[1], 8000, 8077), (listed[2], 16000, 9999), (listed[3], 16000, 9999)] {
            let info = try AudioFile.info(path)
            XCTAssertEqual(info.sampleRate, rate)
            XCTAssertEqual(info.frameCount, n)
        }
    }

    func testOutputFormats() throws {
        let a = try mixture("a.wav", rate: 8000, count: 4000)
        for (fmt, ext, encoding) in [("float", "wav", "float"), ("flac", "flac", "16"), ("wav24", "wav", "24")] {
            let out = dir.appendingPathComponent("out-\(fmt)").path
            let r = try run(["separate", a, "-o", out, "--model", modelPath, "--format", fmt])
            for (_, info) in try assertListedAudio(r, names: ["a_s1.\(ext)", "a_s2.\(ext)"], frames: 4000) {
                XCTAssertTrue(info.encoding.lowercased().contains(encoding), "\(fmt): \(info.encoding)")
            }
        }
        let bad = try run(["separate", a, "-o", dir.path, "--model", modelPath, "--format", "mp3"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderr.contains("Please provide one of 'wav16'"), bad.stderr)
    }

    func testErrorsAreClearAndComeBeforeAnyWork() throws {
        let a = try mixture("a.wav", rate: 8000, count: 4000)
        // Truncated model file.
        let data = try Data(contentsOf: URL(fileURLWithPath: modelPath))
        let cut = dir.appendingPathComponent("cut.safetensors").path
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        var r = try run(["separate", a, "-o", dir.path, "--model", cut])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: invalid tensor") && r.stderr.contains("truncated"), r.stderr)
        // Unknown model name.
        r = try run(["separate", a, "--model", "dpmamba-xxl"])
        XCTAssertTrue(r.status == 1 && r.stderr.contains("dpmamba-xxl"), r.stderr)
        // Output folder that cannot be created: nothing is written for the valid input.
        let file = try mixture("plain.wav", rate: 8000, count: 10)
        r = try run(["separate", a, "-o", file + "/sub", "--model", modelPath])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("output folder"), r.stderr)
        // A missing second input fails before the first is separated.
        let out = dir.appendingPathComponent("o2").path
        r = try run(["separate", a, dir.appendingPathComponent("missing.wav").path, "-o", out, "--model", modelPath])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("missing.wav"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/a_s1.wav"))
        XCTAssertEqual(r.stdout, "")
        // Same stem twice would overwrite.
        let a2 = dir.appendingPathComponent("sub").path
        try FileManager.default.createDirectory(atPath: a2, withIntermediateDirectories: true)
        let dup = try mixture("sub/a.wav", rate: 8000, count: 4000)
        r = try run(["separate", a, dup, "-o", out, "--model", modelPath])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("would both write"), r.stderr)
        // Standard input is the stream command's.
        r = try run(["separate", "-", "--model", modelPath])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: <stdin>: standard input is not a file; use `mambasep stream`"), r.stderr)
        // Bad window settings are usage errors.
        r = try run(["separate", a, "--model", modelPath, "--window", "1", "--overlap", "2"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("longer than the overlap"), r.stderr)
    }

    func testInfoDescribesTheModel() throws {
        var r = try run(["info", "--model", modelPath])
        XCTAssertEqual(r.status, 0, r.stderr)
        let expected = expectedShapes(tinyConfig()).reduce(0) { $0 + $1.1.reduce(1, *) }
        XCTAssertTrue(r.stdout.split(separator: "\n").contains { $0.hasPrefix("parameters") && $0.contains(" \(expected) ") }, r.stdout)
        XCTAssertTrue(r.stdout.contains("8000 Hz"), r.stdout)
        r = try run(["info", "--model", modelPath, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["parameters"] as? Int, expected)
        XCTAssertEqual((obj["config"] as? [String: Any])?["n_filters"] as? Int, 16)
    }
}
