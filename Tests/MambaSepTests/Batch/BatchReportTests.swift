import Foundation
import XCTest
@testable import MambaSep

final class BatchReportTests: XCTestCase {
    private func object(_ line: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
    }

    func testARecordIsOneLineOfJSONWithItsFieldsInOrder() throws {
        let ok = BatchRecord(input: "calls/2024-01-02.flac", outputs: ["out/a_s1.wav", "out/a_s2.wav"], status: .ok,
                             durationSeconds: 30, wallSeconds: 1.5, clippedSamples: [0, 17])
        XCTAssertEqual(ok.jsonLine, #"{"input":"calls/2024-01-02.flac","outputs":["out/a_s1.wav","out/a_s2.wav"],"status":"ok","error":null,"duration_s":30.0,"wall_s":1.5,"rtf":0.05,"clipped_samples":[0,17]}"#)
        let failed = BatchRecord(input: "x.txt", outputs: ["o/x_s1.wav", "o/x_s2.wav"], status: .failed,
                                 error: "x.txt: not a readable audio file", wallSeconds: 0.000_123_4)
        XCTAssertEqual(failed.jsonLine, #"{"input":"x.txt","outputs":["o/x_s1.wav","o/x_s2.wav"],"status":"failed","error":"x.txt: not a readable audio file","duration_s":null,"wall_s":0.000123,"rtf":null,"clipped_samples":null}"#)
        let skipped = try object(BatchRecord(input: "s.wav", outputs: [], status: .skipped).jsonLine)
        XCTAssertEqual(skipped["status"] as? String, "skipped")
        XCTAssertTrue(skipped["rtf"] is NSNull)
    }

    func testAnyPathSurvivesTheRoundTrip() throws {
        let odd = "dir \"quoted\"/back\\slash\ttab\nnew line\u{1}\u{7F}caf\u{E9} \u{1F3A7} \u{2028}.wav"
        let r = BatchRecord(input: odd, outputs: [odd + "_s1"], status: .failed, error: "\(odd): \"bad\"")
        XCTAssertFalse(r.jsonLine.contains("\n"))
        let o = try object(r.jsonLine)
        XCTAssertEqual(o["input"] as? String, odd)
        XCTAssertEqual(o["outputs"] as? [String], [odd + "_s1"])
        XCTAssertEqual(o["error"] as? String, "\(odd): \"bad\"")
    }

    func testNumbersAreFiniteJSON() throws {
        for (d, w) in [(0.0, 2.0), (Double.nan, 1), (3, Double.infinity), (-0.0, -0.0), (1e-9, 1e-9)] {
            let line = BatchRecord(input: "a", outputs: [], status: .ok, durationSeconds: d, wallSeconds: w, clippedSamples: []).jsonLine
            XCTAssertNoThrow(try object(line), line)
            XCTAssertFalse(line.contains("nan") || line.contains("inf") || line.contains("-0"), line)
        }
        XCTAssertNil(BatchRecord(input: "a", outputs: [], status: .ok, durationSeconds: 0, wallSeconds: 1).realTimeFactor)
    }

    func testRecordsAreAppendedAsLinesAcrossRuns() throws {
        let dir = try makeTempDir(self)
        let path = dir.appendingPathComponent("r.jsonl").path
        do {
            let report = try BatchReport(path: path)
            try report.append(BatchRecord(input: "a.wav", outputs: [], status: .skipped))
            // Written at once, before the report is closed.
            XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8).filter { $0 == "\n" }.count, 1)
            try report.append(BatchRecord(input: "b.wav", outputs: [], status: .skipped))
        }
        // An earlier writer's cut-off line: the next record still starts a line of its own.
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"input":"c.w"#.utf8))
        handle.closeFile()
        try BatchReport(path: path).append(BatchRecord(input: "d.wav", outputs: [], status: .skipped))
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(try [lines[0], lines[1], lines[3]].map { try object($0)["input"] as? String }, ["a.wav", "b.wav", "d.wav"])
    }

    func testAReportThatCannotBeWrittenIsAnError() throws {
        let dir = try makeTempDir(self)
        XCTAssertThrowsError(try BatchReport(path: dir.path)) {
            XCTAssertEqual("\($0)", "report \(dir.path) is a folder; give a file such as \(dir.path)/report.jsonl")
        }
        XCTAssertThrowsError(try BatchReport(path: dir.appendingPathComponent("no/r.jsonl").path)) {
            XCTAssertEqual("\($0)", "cannot open report \(dir.path)/no/r.jsonl: No such file or directory")
        }
        let full = try BatchReport(path: "/dev/full")
        XCTAssertThrowsError(try full.append(BatchRecord(input: "a", outputs: [], status: .ok))) {
            XCTAssertEqual("\($0)", "cannot write report /dev/full: No space left on device")
        }
    }
}
