import Foundation
import XCTest
@testable import MambaSep

/// `separate` over large collections (issue 15): `--list`, `--shard`, `--skip-existing`,
/// `--keep-going`, `--report` and the progress line, through the built binary with the bundled
/// model on inputs of a fraction of a second.
final class SeparateCollectionCLITests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = try makeTempDir(self)
    }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// The test's environment without Slurm job-array variables (the tests may run in a Slurm job).
    private var plainEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SLURM_ARRAY_") }
    }

    /// `mambasep separate ARGS --threads 1` in the test folder (relative paths are the test
    /// folder's; one thread is the fastest for inputs this short).
    private func separate(_ args: [String], input: [UInt8] = [], environment: [String: String]? = nil) throws -> CLIResult {
        try runMambasep(["separate"] + args + ["--threads", "1"], input: input, in: dir, environment: environment ?? plainEnvironment)
    }

    /// The outputs `separate -o folder` plans for `input`.
    private func outputs(_ folder: String, _ input: String) -> [String] {
        let stem = URL(fileURLWithPath: input).deletingPathExtension().lastPathComponent
        return ["\(folder)/\(stem)_s1.wav", "\(folder)/\(stem)_s2.wav"]
    }

    /// `count` short mixtures in `in/` (8 and 16 kHz, 0.05 s and longer) and `list.txt` naming
    /// them among comments, blank lines, indentation and a Windows line end; the paths in list order.
    @discardableResult
    private func collection(_ count: Int = 5) throws -> [String] {
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("in"), withIntermediateDirectories: true)
        var names: [String] = []
        for i in 0..<count {
            let rate = i % 3 == 2 ? 16000 : 8000
            let n = rate * (5 + 3 * i) / 100
            var rng = SeededRandom(seed: UInt64(100 + i))
            let x = zip(sine(220 + 40 * Double(i), rate: rate, count: n, amplitude: 0.3), rng.floats(n, -0.05, 0.05)).map(+)
            let name = "in/m\(i).wav"
            try writeAudio(x, to: path(name), sampleRate: rate)
            names.append(name)
        }
        var list = "# \(count) mixtures\n\n"
        for (i, n) in names.enumerated() { list += i == 3 ? "  \(n)\r\n    # an indented comment\n" : "\(n)\n" }
        try list.write(toFile: path("list.txt"), atomically: true, encoding: .utf8)
        return names
    }

    /// Checks every line of a report against the files on disk, and that python3 reads it; returns
    /// each input's status.
    @discardableResult
    private func assertReportAgreesWithDisk(_ report: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: String] {
        let records = try jsonLines(path(report), file: file, line: line)
        if let ok = try python3ReadsJSONLines(path(report)) { XCTAssertTrue(ok, "python3 cannot read \(report)", file: file, line: line) }
        var statuses: [String: String] = [:]
        for r in records {
            XCTAssertEqual(Set(r.keys), ["input", "outputs", "status", "error", "duration_s", "wall_s", "rtf", "clipped_samples"], file: file, line: line)
            let input = try XCTUnwrap(r["input"] as? String, file: file, line: line)
            let outs = try XCTUnwrap(r["outputs"] as? [String], file: file, line: line)
            let status = try XCTUnwrap(r["status"] as? String, file: file, line: line)
            XCTAssertEqual(outs.count, 2, file: file, line: line)
            statuses[input] = status
            let wall = try XCTUnwrap(r["wall_s"] as? Double, file: file, line: line)
            XCTAssertGreaterThanOrEqual(wall, 0, file: file, line: line)
            switch status {
            case "ok":
                XCTAssertTrue(r["error"] is NSNull, file: file, line: line)
                let source = try AudioFile.info(path(input))
                let duration = try XCTUnwrap(r["duration_s"] as? Double, file: file, line: line)
                XCTAssertEqual(duration, source.duration, accuracy: 1e-6, file: file, line: line)
                let rtf = try XCTUnwrap(r["rtf"] as? Double, file: file, line: line)
                XCTAssertEqual(rtf, wall / duration, accuracy: 1e-5 / duration + 1e-6, file: file, line: line)
                XCTAssertEqual((r["clipped_samples"] as? [Int])?.count, 2, file: file, line: line)
                for o in outs {
                    let info = try AudioFile.info(path(o))
                    XCTAssertEqual(info.frameCount, source.frameCount, o, file: file, line: line)
                    XCTAssertEqual(info.sampleRate, source.sampleRate, o, file: file, line: line)
                }
            case "skipped":
                XCTAssertTrue(r["error"] is NSNull && r["duration_s"] is NSNull && r["rtf"] is NSNull && r["clipped_samples"] is NSNull,
                              "\(r)", file: file, line: line)
                for o in outs { XCTAssertTrue(FileManager.default.fileExists(atPath: path(o)), o, file: file, line: line) }
            case "failed":
                let error = try XCTUnwrap(r["error"] as? String, file: file, line: line)
                XCTAssertTrue(error.contains(input), "\(error) names \(input)", file: file, line: line)
                XCTAssertTrue(r["rtf"] is NSNull && r["clipped_samples"] is NSNull, "\(r)", file: file, line: line)
                for o in outs { XCTAssertFalse(FileManager.default.fileExists(atPath: path(o)), o, file: file, line: line) }
            default:
                XCTFail("status \(status)", file: file, line: line)
            }
        }
        return statuses
    }

    // MARK: - Shards

    func testShardsRunOneAfterAnotherWriteExactlyTheFilesOfOneRun() throws {
        let inputs = try collection()
        let whole = try separate(["--list", "list.txt", "-o", "whole"])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        XCTAssertEqual(whole.stdout, inputs.flatMap { outputs("whole", $0) }.map { $0 + "\n" }.joined())
        let expected = try folderContents(dir.appendingPathComponent("whole"))
        XCTAssertEqual(expected.count, 10)

        // Task k of 3 takes the list positions k and k + 3, and says so.
        for k in [2, 3, 1] {
            let r = try separate(["--list", "list.txt", "-o", "sharded", "--shard", "\(k)/3", "--report", "shards.jsonl"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let mine = stride(from: k - 1, to: inputs.count, by: 3).map { inputs[$0] }
            XCTAssertEqual(r.stdout, mine.flatMap { outputs("sharded", $0) }.map { $0 + "\n" }.joined())
            XCTAssertTrue(r.stderr.hasPrefix("mambasep: \(mine.count) input\(mine.count == 1 ? "" : "s") (shard \(k)/3 of 5): \(mine.count) separated, 0 skipped, 0 failed; "), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        // The same names with the same bytes, and nothing else (no temporaries).
        XCTAssertEqual(try folderContents(dir.appendingPathComponent("sharded")), expected)
        let statuses = try assertReportAgreesWithDisk("shards.jsonl")
        XCTAssertEqual(statuses, Dictionary(uniqueKeysWithValues: inputs.map { ($0, "ok") }))
        XCTAssertEqual(try jsonLines(path("shards.jsonl")).count, 5)      // each input once

        // Task ID 1 of a Slurm array --array=0-2 is shard 2/3 (ShardTests check the numbering).
        var env = plainEnvironment
        for (k, v) in ["ID": 1, "MIN": 0, "MAX": 2, "STEP": 1, "COUNT": 3] { env["SLURM_ARRAY_TASK_\(k)"] = "\(v)" }
        let r = try separate(["--list", "list.txt", "-o", "slurm", "--shard", "slurm"], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("mambasep: 2 inputs (shard 2/3 of 5): 2 separated"), r.stderr)
        XCTAssertEqual(try folderContents(dir.appendingPathComponent("slurm")),
                       expected.filter { $0.key.hasPrefix("m1_") || $0.key.hasPrefix("m4_") })
    }

    func testOutputsOfAnotherShardsInputsAreRefusedInEveryShard() throws {
        let inputs = try collection(2)
        // in/m0.wav's first output would replace in/m0_s1.wav, which only shard 2 reads.
        try FileManager.default.copyItem(atPath: path(inputs[1]), toPath: path("in/m0_s1.wav"))
        try "in/m0.wav\nin/m0_s1.wav\n".write(toFile: path("clash.txt"), atomically: true, encoding: .utf8)
        let before = try folderContents(dir.appendingPathComponent("in"))
        for k in 1...2 {
            let r = try separate(["--list", "clash.txt", "-o", "in", "--shard", "\(k)/2"])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertEqual(r.stderr, "error: output in/m0_s1.wav is an input of this run; refusing to overwrite it: choose another output folder\n")
        }
        XCTAssertEqual(try folderContents(dir.appendingPathComponent("in")), before)
    }

    // MARK: - Resuming

    func testARerunWithSkipExistingDoesNoWork() throws {
        let inputs = try collection()
        XCTAssertEqual(try separate(["--list", "list.txt", "-o", "out"]).status, 0)
        let out = dir.appendingPathComponent("out")
        let before = try folderContents(out)
        func inodes() throws -> [String: Int] {
            try Dictionary(uniqueKeysWithValues: before.keys.map {
                ($0, try XCTUnwrap(FileManager.default.attributesOfItem(atPath: out.appendingPathComponent($0).path)[.systemFileNumber] as? Int))
            })
        }
        let inodesBefore = try inodes()
        // An input that was separated is now unreadable: a rerun that opened it would fail.
        try Data("no longer audio".utf8).write(to: URL(fileURLWithPath: path(inputs[2])))

        let r = try separate(["--list", "list.txt", "-o", "out", "--skip-existing", "--report", "rerun.jsonl"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertTrue(r.stderr.hasPrefix("mambasep: 5 inputs: 0 separated, 5 skipped, 0 failed; 0.0s of audio in "), r.stderr)
        XCTAssertEqual(try folderContents(out), before)
        XCTAssertEqual(try inodes(), inodesBefore)        // not even replaced by the same bytes
        XCTAssertEqual(try assertReportAgreesWithDisk("rerun.jsonl"), Dictionary(uniqueKeysWithValues: inputs.map { ($0, "skipped") }))

        // One output missing (a temporary of a killed run beside it): that input alone is done again.
        try FileManager.default.removeItem(at: out.appendingPathComponent("m4_s2.wav"))
        try Data("half".utf8).write(to: out.appendingPathComponent(".m4_s2.wav.1a2b3c.tmp"))
        let again = try separate(["--list", "list.txt", "-o", "out", "--skip-existing", "--report", "again.jsonl"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout, "out/m4_s1.wav\nout/m4_s2.wav\n")
        XCTAssertTrue(again.stderr.hasPrefix("mambasep: 5 inputs: 1 separated, 4 skipped, 0 failed; "), again.stderr)
        var expected = before
        expected[".m4_s2.wav.1a2b3c.tmp"] = Data("half".utf8)
        XCTAssertEqual(try folderContents(out), expected)
        let statuses = try assertReportAgreesWithDisk("again.jsonl")
        XCTAssertEqual(statuses.filter { $0.value == "ok" }.map(\.key), [inputs[4]])
    }

    // MARK: - Bad inputs

    func testKeepGoingCompletesTheGoodFilesAndReportsTheBadOnes() throws {
        let good = try collection(2)
        try Data("a text file, not audio\n".utf8).write(to: URL(fileURLWithPath: path("in/notes.txt")))
        let wav = try Data(contentsOf: URL(fileURLWithPath: path(good[1])))
        try wav.prefix(wav.count / 2).write(to: URL(fileURLWithPath: path("in/cut.wav")))
        try "\(good[0])\nin/missing.wav\nin/notes.txt\nin/cut.wav\n\(good[1])\n".write(toFile: path("bad.txt"), atomically: true, encoding: .utf8)

        // Without --keep-going, the first bad input stops the run before any work.
        var r = try separate(["--list", "bad.txt", "-o", "out", "--report", "first.jsonl"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stdout, "")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "error: in/missing.wav: no such file")
        XCTAssertEqual(lines.count, 2, r.stderr)
        XCTAssertTrue(lines.last!.hasPrefix("mambasep: 5 inputs: 0 separated, 0 skipped, 1 failed, 4 not started (stopped at the first failure; --keep-going goes on)"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out")))
        XCTAssertEqual(try assertReportAgreesWithDisk("first.jsonl"), ["in/missing.wav": "failed"])

        // With it, the good inputs are separated, each bad one is one line, and the status is 1.
        r = try separate(["--list", "bad.txt", "-o", "out", "--keep-going", "--report", "report.jsonl"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stdout, (outputs("out", good[0]) + outputs("out", good[1])).map { $0 + "\n" }.joined())
        let errors = r.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(errors.count, 4, r.stderr)
        guard errors.count == 4 else { return }
        XCTAssertEqual(errors[0], "error: in/missing.wav: no such file")
        XCTAssertTrue(errors[1].hasPrefix("error: in/notes.txt: not a readable audio file"), errors[1])
        XCTAssertTrue(errors[2].hasPrefix("error: in/cut.wav: truncated"), errors[2])
        XCTAssertTrue(errors[3].hasPrefix("mambasep: 5 inputs: 2 separated, 0 skipped, 3 failed; "), errors[3])
        XCTAssertEqual(try folderContents(dir.appendingPathComponent("out")).keys.sorted(),
                       ["m0_s1.wav", "m0_s2.wav", "m1_s1.wav", "m1_s2.wav"])
        let statuses = try assertReportAgreesWithDisk("report.jsonl")
        XCTAssertEqual(statuses, [good[0]: "ok", "in/missing.wav": "failed", "in/notes.txt": "failed", "in/cut.wav": "failed", good[1]: "ok"])
        XCTAssertEqual(try jsonLines(path("report.jsonl")).compactMap { $0["input"] as? String },
                       [good[0], "in/missing.wav", "in/notes.txt", "in/cut.wav", good[1]])     // in list order

        // Resumed: the good ones are skipped, the bad ones fail again.
        r = try separate(["--list", "bad.txt", "-o", "out", "--keep-going", "--skip-existing"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 4, r.stderr)
        XCTAssertTrue(r.stderr.contains("\nmambasep: 5 inputs: 0 separated, 2 skipped, 3 failed; "), r.stderr)
    }

    func testAnOutputThatCannotBeWrittenStopsEvenWithKeepGoing() throws {
        let inputs = try collection(3)
        // Not a bad input but a bad place to write: the next inputs would fail there too.
        try FileManager.default.createDirectory(atPath: path("out/m1_s1.wav"), withIntermediateDirectories: true)
        let r = try separate(["--list", "list.txt", "-o", "out", "--keep-going", "--report", "r.jsonl"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stdout, outputs("out", inputs[0]).map { $0 + "\n" }.joined())
        let lines = r.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "error: out/m1_s1.wav: is a directory; cannot write audio there")
        XCTAssertTrue(lines.count == 2 && lines[1].hasPrefix("mambasep: 3 inputs: 1 separated, 0 skipped, 1 failed, 1 not started (stopped: an output cannot be written); "), r.stderr)
        let records = try jsonLines(path("r.jsonl"))
        XCTAssertEqual(records.map { $0["status"] as? String }, ["ok", "failed"])
        XCTAssertEqual(records.last?["error"] as? String, "out/m1_s1.wav: is a directory; cannot write audio there")
        XCTAssertEqual(try folderContents(dir.appendingPathComponent("out")).keys.sorted(), ["m0_s1.wav", "m0_s2.wav"])
    }

    func testAKilledTaskLeavesAValidReportOfWhatItFinished() throws {
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("in"), withIntermediateDirectories: true)
        try writeAudio(sine(300, rate: 8000, count: 1600, amplitude: 0.3), to: path("in/short.wav"), sampleRate: 8000)
        // Five minutes: still being separated when the signal comes.
        try writeAudio(sine(220, rate: 8000, count: 8000 * 300, amplitude: 0.3), to: path("in/long.wav"), sampleRate: 8000)
        try "in/short.wav\nin/long.wav\n".write(toFile: path("two.txt"), atomically: true, encoding: .utf8)
        let report = path("killed.jsonl")
        let r = try runMambasep(["separate", "--list", "two.txt", "-o", "out", "--report", "killed.jsonl", "--threads", "1"],
                                in: dir, environment: plainEnvironment, whileRunning: { p in
            // Killed while the long input is being written (its temporaries exist).
            let out = self.path("out")
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline,
                  ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter({ $0.hasPrefix(".long_s") }).count < 2 {
                usleep(10_000)
            }
            usleep(100_000)
            kill(p.processIdentifier, SIGKILL)
        })
        XCTAssertTrue(r.signalled)
        XCTAssertEqual(try assertReportAgreesWithDisk("killed.jsonl"), ["in/short.wav": "ok"])
        XCTAssertEqual(try jsonLines(report).count, 1)
        // Beside the finished outputs, only the unfinished input's temporaries.
        let names = try folderContents(dir.appendingPathComponent("out")).keys.sorted()
        XCTAssertEqual(names.filter { !$0.hasPrefix(".") }, ["short_s1.wav", "short_s2.wav"])
        let temporaries = names.filter { $0.hasPrefix(".") }
        XCTAssertEqual(temporaries.count, 2, "\(names)")
        for n in temporaries {
            XCTAssertNotNil(n.range(of: #"^\.long_s[12]\.wav\.[0-9a-f]+\.tmp$"#, options: .regularExpression), n)
        }
    }

    // MARK: - Lists and options

    func testListsFromStandardInputFollowTheArguments() throws {
        let inputs = try collection(3)
        let r = try separate(["--list", "-", inputs[2], "-o", "out"], input: Array("\(inputs[0])\n\n# c\n\(inputs[1])".utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, [inputs[2], inputs[0], inputs[1]].flatMap { outputs("out", $0) }.map { $0 + "\n" }.joined())
        XCTAssertTrue(r.stderr.hasPrefix("mambasep: 3 inputs: 3 separated, 0 skipped, 0 failed; "), r.stderr)
    }

    func testBadCollectionOptionsAreOneLineErrorsBeforeAnyWork() throws {
        try collection(3)
        try "# nothing but comments\n\n   \n".write(toFile: path("empty.txt"), atomically: true, encoding: .utf8)
        try Data("in/m0.wav\nin/m\u{E9}.wav\n".data(using: .isoLatin1)!).write(to: URL(fileURLWithPath: path("latin1.txt")))
        var irregular = plainEnvironment           // sbatch --array=1,3,5,7, task 3
        for (k, v) in ["ID": 3, "MIN": 1, "MAX": 7, "STEP": 1, "COUNT": 4] { irregular["SLURM_ARRAY_TASK_\(k)"] = "\(v)" }
        let m1 = try Data(contentsOf: URL(fileURLWithPath: path("in/m1.wav")))
        let rows: [(args: [String], env: [String: String]?, status: Int32, says: String)] = [
            (["--shard", "0/3"], nil, 64, "--shard 0/3: K counts from 1: the tasks are 1/3 … 3/3"),
            (["--shard", "4/3"], nil, 64, "--shard 4/3: K must be between 1 and 3"),
            (["--shard", "3"], nil, 64, "--shard 3: give K/N"),
            (["--shard", "-1/4"], nil, 64, "--shard -1/4: give K/N"),
            (["--shard", "slurm"], nil, 64, "--shard slurm: SLURM_ARRAY_TASK_ID is not set"),
            (["--shard", "slurm"], irregular, 64, "are not evenly spaced by 1"),
            (["--list", "-", "--list", "-"], nil, 64, "--list - (standard input) can be given only once"),
            (["--report", "-"], nil, 64, "--report needs a file (standard output lists the outputs)"),
            (["--list", "nolist.txt"], nil, 1, "error: nolist.txt: no such list file"),
            (["--list", "empty.txt"], nil, 1, "error: empty.txt: no input paths (only blank lines and comments)"),
            (["--list", "latin1.txt"], nil, 1, "error: latin1.txt line 2: not valid UTF-8"),
            (["--list", "in"], nil, 1, "error: in: is a folder, not a list of paths"),
            (["in/m2.wav"], nil, 1, "error: in/m2.wav is given twice; name each input once"),
            (["--report", "in/m1.wav"], nil, 1, "error: report in/m1.wav is an input of this run; refusing to append to it"),
            (["--report", "list.txt"], nil, 1, "error: report list.txt is an input of this run"),
            (["--report", "o/m1_s2.wav"], nil, 1, "error: output o/m1_s2.wav is the report file o/m1_s2.wav"),
            (["--report", "nofolder/r.jsonl"], nil, 1, "error: cannot open report nofolder/r.jsonl: No such file or directory"),
        ]
        for row in rows {
            let args = (row.args.contains("--list") ? [] : ["--list", "list.txt"]) + row.args + ["-o", "o"]
            let r = try separate(args, environment: row.env)
            XCTAssertEqual(r.status, row.status, "\(row.args): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(row.args)")
            XCTAssertTrue(r.stderr.contains(row.says), "\(row.args): \(r.stderr)")
            if row.status == 1 { XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(row.args): \(r.stderr)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("o")), "\(row.args)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("in/m1.wav"))), m1)
        XCTAssertEqual(try String(contentsOfFile: path("list.txt"), encoding: .utf8).first, "#")
        let r = try separate(["-o", "o"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("give at least one mixture file, or --list FILE"), r.stderr)
    }

    // MARK: - Progress

    func testProgressLineOnATerminal() throws {
        let inputs = try collection(3)
        XCTAssertEqual(try separate([inputs[0], "-o", "out"]).status, 0)
        let t = try runMambasepOnTerminal(["separate", "--list", "list.txt", "-o", "out", "--skip-existing", "--threads", "1"], in: dir)
        XCTAssertEqual(t.status, 0, t.terminal)
        XCTAssertEqual(t.stdout, (outputs("out", inputs[1]) + outputs("out", inputs[2])).map { $0 + "\n" }.joined())
        // Redrawn in place: carriage return, erase to the end of the line.
        for words in ["\r\u{1B}[K1/3 files (1 skipped) · 0.00 of 0.00 h audio · ETA …", "% in/m1.wav", "% in/m2.wav",
                      "3/3 files (1 skipped) · 0.00 of 0.00 h audio · took ", "\r\nmambasep: 3 inputs: 2 separated, 1 skipped, 0 failed; "] {
            XCTAssertTrue(t.terminal.contains(words), "\(words) not in \(t.terminal.debugDescription)")
        }
    }
}
