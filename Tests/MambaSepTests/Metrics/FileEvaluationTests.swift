import Foundation
import XCTest
@testable import MambaSep

/// File-level scoring and dataset discovery.
final class FileEvaluationTests: XCTestCase {
    private func write(_ x: [Float], _ url: URL, rate: Int = 8000) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try writeAudio(x, to: url.path, sampleRate: rate, format: .wavFloat)
    }

    func testRateLengthAndSilenceErrors() throws {
        let d = try makeTempDir(self)
        let s1 = d.appendingPathComponent("s1.wav"), s2 = d.appendingPathComponent("s2.wav")
        try write(sine(300, rate: 8000, count: 800), s1)
        try write(sine(700, rate: 8000, count: 800), s2)
        let e16 = d.appendingPathComponent("e16.wav"), eShort = d.appendingPathComponent("short.wav")
        let silent = d.appendingPathComponent("silent.wav")
        try write(sine(300, rate: 16000, count: 1600), e16, rate: 16000)
        try write(sine(300, rate: 8000, count: 790), eShort)
        try write([Float](repeating: 0, count: 800), silent)

        XCTAssertThrowsError(try FileEvaluation.score(references: [s1.path, s2.path], estimates: [e16.path, s2.path],
                                                      mixture: nil, trim: false)) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .rateMismatch)
            XCTAssertTrue("\($0)".hasPrefix(e16.path), "\($0)")
        }
        XCTAssertThrowsError(try FileEvaluation.score(references: [s1.path, s2.path], estimates: [eShort.path, s2.path],
                                                      mixture: nil, trim: false)) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .lengthMismatch)
            XCTAssertTrue("\($0)".hasPrefix(eShort.path), "\($0)")
        }
        let trimmed = try FileEvaluation.score(references: [s1.path, s2.path], estimates: [s2.path, eShort.path],
                                               mixture: nil, trim: true)
        XCTAssertEqual(trimmed.permutation, [1, 0])
        XCTAssertTrue(trimmed.siSNR.allSatisfy { $0 > 60 })
        XCTAssertThrowsError(try FileEvaluation.score(references: [silent.path, s2.path], estimates: [s1.path, s2.path],
                                                      mixture: nil, trim: false)) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .silentReference)
        }
        XCTAssertThrowsError(try FileEvaluation.score(references: [s1.path, s2.path], estimates: [s1.path],
                                                      mixture: nil, trim: false)) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .countMismatch)
        }
        XCTAssertThrowsError(try FileEvaluation.score(references: [s1.path], estimates: [d.appendingPathComponent("none.wav").path],
                                                      mixture: nil, trim: false)) {
            XCTAssertEqual(($0 as? AudioError)?.kind, .missing)
        }
    }

    func testDatasetDiscoveryAndMissingCounterparts() throws {
        let d = try makeTempDir(self)
        let root = d.appendingPathComponent("set"), est = d.appendingPathComponent("est")
        for id in ["a", "b"] {
            for sub in ["mix_clean", "s1", "s2"] { try write([0.1, 0.2], root.appendingPathComponent("\(sub)/\(id).wav")) }
            for k in 1...2 { try write([0.1, 0.2], est.appendingPathComponent("\(id)_s\(k).wav")) }
        }
        let items = try EvalDataset.discover(root: root.path, estimatesDir: est.path)
        XCTAssertEqual(items.map(\.id), ["a", "b"])
        XCTAssertEqual(items[1].references.map { ($0 as NSString).lastPathComponent }, ["b.wav", "b.wav"])
        XCTAssertEqual(items[1].estimates.map { ($0 as NSString).lastPathComponent }, ["b_s1.wav", "b_s2.wav"])

        try FileManager.default.removeItem(at: est.appendingPathComponent("b_s2.wav"))
        try FileManager.default.removeItem(at: root.appendingPathComponent("s1/a.wav"))
        XCTAssertThrowsError(try EvalDataset.discover(root: root.path, estimatesDir: est.path)) {
            let lines = ($0 as? DatasetError)?.lines ?? []
            XCTAssertEqual(lines.count, 2, "\(lines)")
            XCTAssertTrue(lines.contains { $0.hasPrefix(root.appendingPathComponent("s1/a.wav").path) && $0.contains("missing reference") })
            XCTAssertTrue(lines.contains { $0.hasPrefix(est.appendingPathComponent("b_s2.wav").path) && $0.contains("missing estimate") })
        }
        XCTAssertThrowsError(try EvalDataset.discover(root: d.appendingPathComponent("nope").path, estimatesDir: est.path))
        XCTAssertThrowsError(try EvalDataset.discover(root: est.path, estimatesDir: est.path)) {
            XCTAssertTrue("\($0)".contains("no mix_clean/ or mix/"))
        }
    }
}
