import Foundation
import XCTest
@testable import MambaSep

/// Runs the built `mambasep` binary: output formats, numbers against NumPy, exit codes, stderr.
final class EvalCLITests: XCTestCase {
    // MARK: - Harness


    func run(_ args: [String]) throws -> CLIResult {
        try runMambasep(args, in: Fixtures.repoRoot)
    }

    func jsonObject(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// Asserts a failure: the exit code, nothing on stdout, one `error:` line naming `path`.
    func assertFails(_ r: CLIResult, naming path: String, saying words: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        XCTAssertEqual(r.stdout, "", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(path): "), r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(words), r.stderr, file: file, line: line)
    }

    // MARK: - Behaviour

    func testVersionAndHelp() throws {
        let r = try run(["--version"])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), MambaSepInfo.version)
        XCTAssertTrue(try run(["--help"]).stdout.contains("eval"))
    }

    func testSingleMixtureSwappedEstimates() throws {
        let m = Fixtures.audio.appendingPathComponent("mix").path
        let args = ["eval", "--ref", "\(m)/s1.wav", "\(m)/s2.wav", "--est", "\(m)/s2.wav", "\(m)/s1.wav", "--mix", "\(m)/mix.wav"]
        let json = try run(args + ["--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertEqual(json.stderr, "")
        let obj = try jsonObject(json.stdout)
        XCTAssertEqual(obj["permutation"] as? [Int], [1, 0])
        let sources = try XCTUnwrap(obj["sources"] as? [[String: Any]])
        XCTAssertEqual(sources[0]["estimate"] as? String, "\(m)/s1.wav", "reference 1 is matched to the second estimate")
        XCTAssertGreaterThan(try XCTUnwrap(obj["si_snr_mean"] as? Double), 90)
        XCTAssertGreaterThan(try XCTUnwrap(obj["si_snri_mean"] as? Double), 90)

        let table = try run(args)
        XCTAssertEqual(table.status, 0)
        XCTAssertTrue(table.stdout.contains("SI-SNRi (dB)") && table.stdout.contains("mean"), table.stdout)
        let csv = try run(args + ["--csv"])
        XCTAssertEqual(csv.stdout.split(separator: "\n").first, "source,reference,estimate,si_snr,si_snri")
        XCTAssertEqual(csv.stdout.split(separator: "\n").count, 3)
    }

    func testMixtureAsEstimateGivesZeroImprovement() throws {
        let m = Fixtures.audio.appendingPathComponent("mix").path
        let r = try run(["eval", "--ref", "\(m)/s1.wav", "\(m)/s2.wav", "--est", "\(m)/mix.wav", "\(m)/mix.wav",
                         "--mix", "\(m)/mix.wav", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try XCTUnwrap(jsonObject(r.stdout)["si_snri_mean"] as? Double), 0, accuracy: 1e-12)
    }

    /// Estimates e1 = s2 + 0.3·s1 and e2 = s1 + 0.2·mix (float32) for each librimix-mini item;
    /// the expected numbers come from tools/eval_numpy.py's `si_snr` on the same signals.
    func testDatasetModeMatchesNumPyGoldenValues() throws {
        let root = Fixtures.audio.appendingPathComponent("librimix-mini")
        let est = try makeTempDir(self)
        for item in ["item01", "item02", "item03"] {
            let s1 = try AudioFile.read(root.appendingPathComponent("s1/\(item).wav").path).samples
            let s2 = try AudioFile.read(root.appendingPathComponent("s2/\(item).wav").path).samples
            let mix = try AudioFile.read(root.appendingPathComponent("mix_clean/\(item).wav").path).samples
            let e1 = zip(s2, s1).map { $0 + Float(0.3) * $1 }
            let e2 = zip(s1, mix).map { $0 + Float(0.2) * $1 }
            try writeAudio(e1, to: est.appendingPathComponent("\(item)_s1.wav").path, sampleRate: 8000, format: .wavFloat)
            try writeAudio(e2, to: est.appendingPathComponent("\(item)_s2.wav").path, sampleRate: 8000, format: .wavFloat)
        }
        let r = try run(["eval", root.path, "--est-dir", est.path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try jsonObject(r.stdout)
        let items = try XCTUnwrap(obj["items"] as? [[String: Any]])
        let golden: [(String, Double, Double)] = [
            ("item01", 13.008242803668974, 13.017097552337395),
            ("item02", 13.010390038493238, 13.009960786389122),
            ("item03", 13.017064881239673, 12.991322380342652),
        ]
        XCTAssertEqual(items.count, 3)
        for (it, g) in zip(items, golden) {
            XCTAssertEqual(it["id"] as? String, g.0)
            XCTAssertEqual(it["permutation"] as? [Int], [1, 0])
            XCTAssertEqual(try XCTUnwrap(it["si_snr"] as? Double), g.1, accuracy: 1e-3)
            XCTAssertEqual(try XCTUnwrap(it["si_snri"] as? Double), g.2, accuracy: 1e-3)
        }
        let summary = try XCTUnwrap(obj["summary"] as? [String: Any])
        XCTAssertEqual(summary["count"] as? Int, 3)
        XCTAssertEqual(try XCTUnwrap(summary["si_snri_mean"] as? Double), golden.map(\.2).reduce(0, +) / 3, accuracy: 1e-3)
        XCTAssertEqual(try XCTUnwrap(summary["si_snri_median"] as? Double), 13.009960786389122, accuracy: 1e-3)
        XCTAssertEqual(try XCTUnwrap(summary["si_snri_min"] as? Double), 12.991322380342652, accuracy: 1e-3)
        XCTAssertEqual(try XCTUnwrap(summary["si_snr_mean"] as? Double), golden.map(\.1).reduce(0, +) / 3, accuracy: 1e-3)

        let table = try run(["eval", root.path, "--est-dir", est.path])
        XCTAssertTrue(table.stdout.contains("items: 3") && table.stdout.contains("worst"), table.stdout)
        let csv = try run(["eval", root.path, "--est-dir", est.path, "--csv"]).stdout.split(separator: "\n")
        XCTAssertEqual(csv.count, 4)
        XCTAssertTrue(csv[0].hasPrefix("id,si_snr,si_snri,permutation"))
        XCTAssertTrue(csv[1].hasPrefix("item01,13.00"))

        // A missing counterpart names the expected file.
        try FileManager.default.removeItem(at: est.appendingPathComponent("item02_s2.wav"))
        assertFails(try run(["eval", root.path, "--est-dir", est.path]),
                    naming: est.appendingPathComponent("item02_s2.wav").path, saying: "missing estimate")
    }

    // MARK: - Bad input

    func testBadInputsEachPrintOneErrorLine() throws {
        let m = Fixtures.audio.appendingPathComponent("mix").path
        let d = try makeTempDir(self)
        func eval(_ est: String, _ extra: [String] = []) throws -> CLIResult {
            try run(["eval", "--ref", "\(m)/s1.wav", "\(m)/s2.wav", "--est", est, "\(m)/s2.wav"] + extra)
        }
        let missing = d.appendingPathComponent("missing.wav").path
        assertFails(try eval(missing), naming: missing, saying: "no such file")
        assertFails(try eval(d.path), naming: d.path, saying: "directory")

        let text = d.appendingPathComponent("text.wav").path
        try Data("definitely not audio".utf8).write(to: URL(fileURLWithPath: text))
        assertFails(try eval(text), naming: text, saying: "not a readable audio file")

        let empty = d.appendingPathComponent("empty.wav").path
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        assertFails(try eval(empty), naming: empty, saying: "empty")

        let truncated = d.appendingPathComponent("trunc.wav").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(m)/s1.wav"))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        assertFails(try eval(truncated), naming: truncated, saying: "truncated")

        let nan = d.appendingPathComponent("nan.wav").path
        var x = [Float](repeating: 0.1, count: 28000)
        x[5] = .nan
        try floatWAVBytes(x, rate: 8000).write(to: URL(fileURLWithPath: nan))
        assertFails(try eval(nan), naming: nan, saying: "not finite")

        let rate = d.appendingPathComponent("rate.wav").path
        try writeAudio(sine(200, rate: 16000, count: 56000), to: rate, sampleRate: 16000)
        assertFails(try eval(rate), naming: rate, saying: "sample rate 16000 Hz")

        let short = d.appendingPathComponent("short.wav").path
        try writeAudio(Array(try AudioFile.read("\(m)/s1.wav").samples.prefix(27000)), to: short, sampleRate: 8000)
        assertFails(try eval(short), naming: short, saying: "--trim")
        let trimmed = try eval(short, ["--trim", "--json"])
        XCTAssertEqual(trimmed.status, 0, trimmed.stderr)
        XCTAssertGreaterThan(try XCTUnwrap(jsonObject(trimmed.stdout)["si_snr_mean"] as? Double), 50)

        let silent = d.appendingPathComponent("silent.wav").path
        try writeAudio([Float](repeating: 0, count: 28000), to: silent, sampleRate: 8000)
        assertFails(try run(["eval", "--ref", silent, "\(m)/s2.wav", "--est", "\(m)/s1.wav", "\(m)/s2.wav"]),
                    naming: silent, saying: "silent")
    }

    func testUsageErrorsExitWithUsageCode() throws {
        let m = Fixtures.audio.appendingPathComponent("mix").path
        for args in [["eval"], ["eval", "--ref", "\(m)/s1.wav", "--est", "\(m)/s1.wav", "\(m)/s2.wav"],
                     ["eval", Fixtures.audio.path], ["eval", "--ref", "\(m)/s1.wav", "--est", "\(m)/s1.wav", "--json", "--csv"]] {
            let r = try run(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdout, "")
            XCTAssertFalse(r.stderr.isEmpty)
        }
    }

    // MARK: - Issue 19 regressions

    func testSilentMixtureIsAnError() throws {
        let d = try makeTempDir(self)
        let m = Fixtures.audio.appendingPathComponent("mix").path
        let n = try AudioFile.info("\(m)/s1.wav").frameCount
        let silent = d.appendingPathComponent("silent.wav").path
        try writeAudio([Float](repeating: 0, count: n), to: silent, sampleRate: 8000)
        let r = try run(["eval", "--ref", "\(m)/s1.wav", "\(m)/s2.wav", "--est", "\(m)/s1.wav", "\(m)/s2.wav", "--mix", silent])
        assertFails(r, naming: silent, saying: "mixture is silent (no signal energy), SI-SNRi is undefined")
    }

    func testUnwritableStandardOutputIsAnError() throws {
        let m = Fixtures.audio.appendingPathComponent("mix").path
        let full = try XCTUnwrap(FileHandle(forWritingAtPath: "/dev/full"))
        for extra in [["--json"], ["--csv"], []] {
            let r = try runMambasep(["eval", "--ref", "\(m)/s1.wav", "\(m)/s2.wav", "--est", "\(m)/s2.wav", "\(m)/s1.wav"] + extra,
                                    in: Fixtures.repoRoot, stdoutFile: full)
            XCTAssertEqual(r.status, 1, "\(extra): \(r.stderr)")
            XCTAssertEqual(r.stderr, "error: cannot write to standard output: No space left on device\n")
        }
    }
}
