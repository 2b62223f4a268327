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

    // MARK: - No input is ever lost (issue 19)

    /// Files in `dir` (names, sorted), hidden ones included.
    private func listing(_ d: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? []).sorted()
    }

    func testAnOutputThatIsAnInputIsRefusedBeforeAnythingIsWritten() throws {
        let talk = try mixture("talk.wav", rate: 8000, count: 4000)
        let s1 = try mixture("talk_s1.wav", rate: 8000, count: 4001)
        let before = try Data(contentsOf: URL(fileURLWithPath: s1))
        let talkBefore = try Data(contentsOf: URL(fileURLWithPath: talk))
        // talk.wav's first speaker would be written over the second input.
        let r = try runMambasep(["separate", "talk.wav", "talk_s1.wav", "-o", ".", "--model", modelPath], in: dir)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, "error: output ./talk_s1.wav is an input of this run (talk_s1.wav); refusing to overwrite it: choose another output folder\n")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: s1)), before)
        XCTAssertEqual(listing(dir), ["talk.wav", "talk_s1.wav", "tiny.safetensors"])
        _ = talk

        // The same file under another name: a hard link and a symbolic link in the output folder.
        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try FileManager.default.linkItem(atPath: talk, toPath: out.appendingPathComponent("talk_s2.wav").path)
        var h = try run(["separate", talk, "-o", out.path, "--model", modelPath])
        XCTAssertEqual(h.status, 1, h.stderr)
        XCTAssertTrue(h.stderr.contains("talk_s2.wav is an input of this run (\(talk))"), h.stderr)
        try FileManager.default.removeItem(at: out.appendingPathComponent("talk_s2.wav"))
        try FileManager.default.createSymbolicLink(atPath: out.appendingPathComponent("talk_s1.wav").path, withDestinationPath: "../talk.wav")
        h = try run(["separate", talk, "-o", out.path, "--model", modelPath])
        XCTAssertEqual(h.status, 1, h.stderr)
        XCTAssertTrue(h.stderr.contains("is an input of this run"), h.stderr)
        XCTAssertEqual(listing(out), ["talk_s1.wav"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: talk)), talkBefore)
        // The model file is an input too.
        let modelDir = dir.appendingPathComponent("m")
        try FileManager.default.createDirectory(at: modelDir, withIntermediateDirectories: true)
        let oddModel = modelDir.appendingPathComponent("talk_s2.wav").path
        try FileManager.default.copyItem(atPath: modelPath, toPath: oddModel)
        h = try run(["separate", talk, "-o", modelDir.path, "--model", oddModel])
        XCTAssertEqual(h.status, 1, h.stderr)
        XCTAssertTrue(h.stderr.contains("talk_s2.wav is an input of this run"), h.stderr)
        XCTAssertEqual(listing(modelDir), ["talk_s2.wav"])
    }

    func testExistingOutputsAreReplacedWhole() throws {
        let a = try mixture("a.wav", rate: 8000, count: 3000)
        let out = dir.appendingPathComponent("out").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: URL(fileURLWithPath: out + "/a_s1.wav"))
        let r = try run(["separate", a, "-o", out, "--model", modelPath])
        try assertListedAudio(r, names: ["a_s1.wav", "a_s2.wav"], frames: 3000)
        XCTAssertEqual(listing(URL(fileURLWithPath: out)), ["a_s1.wav", "a_s2.wav"])
    }

    func testModelOutputThatIsNaNIsReportedAgainstTheInputNotTheOutput() throws {
        // Finite samples near 1e38 overflow the model (the bundled one, and this test model).
        let path = dir.appendingPathComponent("loud.wav").path
        try floatWAVBytes((0..<8000).map { Float(1e38 * sin(Double($0) * 0.05)) }, rate: 8000).write(to: URL(fileURLWithPath: path))
        let out = dir.appendingPathComponent("new/nested")
        let model = dir.appendingPathComponent("overflowing.safetensors").path
        try overflowingModelBuilder().build().write(to: URL(fileURLWithPath: model))
        let r = try run(["separate", path, "-o", out.path, "--model", model])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertTrue(r.stderr.hasPrefix("error: \(path): the model's output became NaN/Inf at 0.00 s: the input reaches 1e+38, far beyond full scale"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        // The folders this run created are gone again; nothing is left in the parent.
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("new").path))
    }

    func testFoundationErrorsAreWordsAndFailedRunsLeaveNoFolder() throws {
        let a = try mixture("a.wav", rate: 8000, count: 2000)
        var r = try run(["separate", a, "-o", a + "/sub", "--model", modelPath])
        XCTAssertEqual(r.stderr, "error: cannot create output folder \(a)/sub: \(a) is a file, not a folder\n")
        r = try run(["separate", a, "-o", "", "--model", modelPath])
        XCTAssertEqual(r.stderr, "error: the output folder is an empty name; give a folder, e.g. -o .\n")
        r = try run(["separate", a, "-o", dir.appendingPathComponent("o").path, "--model", dir.path])
        XCTAssertEqual(r.stderr, "error: cannot read model file \(dir.path): is a folder, not a .safetensors file\n")
        r = try run(["info", "--model", dir.path])
        XCTAssertEqual(r.stderr, "error: cannot read model file \(dir.path): is a folder, not a .safetensors file\n")
        // A model that fails to load is found before the output folder is made.
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("o").path))
    }

    func testWindowsAreBoundedAndNegativeNumbersReachValidation() throws {
        let a = try mixture("a.wav", rate: 8000, count: 2000)
        for (args, words) in [(["--window", "-1"], "window -1.0 s with overlap 1.0 s"),
                              (["--window", "1000"], "window of 1000.0 s: at most 60 s"),
                              (["--overlap", "-0.5"], "overlap -0.5 s"),
                              (["--threads", "-2"], "--threads must be between 1 and 256")] {
            let r = try run(["separate", a, "--model", modelPath, "-o", dir.path] + args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(words), "\(args): \(r.stderr)")
        }
    }

    func testUnwritableStandardOutputIsAnError() throws {
        let a = try mixture("a.wav", rate: 8000, count: 2000)
        let full = try XCTUnwrap(FileHandle(forWritingAtPath: "/dev/full"))
        let m: String = modelPath, d: String = dir.path
        for args: [String] in [["separate", a, "-o", d, "--model", m], ["info", "--model", m, "--json"], ["info"]] {
            let r = try runMambasep(args, stdoutFile: full)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr, "error: cannot write to standard output: No space left on device\n", "\(args)")
        }
    }

    // MARK: - Interruptions

    /// Starts separating a long input; once its temporary files exist, sends `signal`.
    private func interrupted(by sig: Int32) throws -> (CLIResult, URL) {
        // Ten minutes: the run is still separating when the signal comes.
        let a = dir.appendingPathComponent("long.wav").path
        try writeAudio(sine(220, rate: 8000, count: 8000 * 600, amplitude: 0.3), to: a, sampleRate: 8000)
        let out = dir.appendingPathComponent("out-\(sig)/sub")
        let r = try runMambasep(["separate", a, "-o", out.path, "--model", modelPath, "--threads", "1"], whileRunning: { p in
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
                if names.filter({ $0.hasSuffix(".tmp") }).count == 2 { break }
                usleep(10_000)
            }
            usleep(200_000)
            kill(p.processIdentifier, sig)
        })
        return (r, out)
    }

    func testSIGINTAndSIGTERMRemoveTemporariesAndExit130And143() throws {
        for (sig, status, word) in [(SIGINT, Int32(130), "interrupted (SIGINT)"), (SIGTERM, 143, "terminated (SIGTERM)")] {
            let (r, out) = try interrupted(by: sig)
            XCTAssertEqual(r.status, status, r.stderr)
            XCTAssertFalse(r.signalled)
            XCTAssertEqual(r.stdout, "")
            XCTAssertEqual(r.stderr, "mambasep: \(word); unfinished outputs removed\n")
            // No temporary, no final name, and the folders the run created are gone.
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.deletingLastPathComponent().path), listing(out).joined(separator: " "))
        }
    }

    func testKillLeavesOnlyRecognisableTemporaries() throws {
        let (r, out) = try interrupted(by: SIGKILL)
        XCTAssertTrue(r.signalled)
        XCTAssertEqual(r.status, SIGKILL)
        let names = listing(out)
        XCTAssertEqual(names.count, 2, "\(names)")
        for n in names {
            XCTAssertNotNil(n.range(of: #"^\.long_s[12]\.wav\.[0-9a-f]{1,8}\.tmp$"#, options: .regularExpression), n)
        }
    }
}
