import Foundation
import XCTest
@testable import MambaSep

/// Scoring a whole dataset: every item, failures kept per item, the summary.
final class DatasetEvaluationTests: XCTestCase {
    func testScoresEveryItemKeepsFailuresAndSummarises() throws {
        let root = Fixtures.path("librimix-mini")
        let est = try makeTempDir(self)
        // Estimates: the references plus a little noise, item02's in the other order, item03's
        // first estimate one sample short.
        var rng = SeededRandom(seed: 8)
        for item in ["item01", "item02", "item03"] {
            for k in 1...2 {
                let ref = try Fixtures.samples("librimix-mini/s\(k)/\(item).wav")
                var x = ref.map { $0 + Float.random(in: -0.01..<0.01, using: &rng) }
                if item == "item03" && k == 1 { x.removeLast() }
                let slot = item == "item02" ? 3 - k : k
                try writeAudio(x, to: est.appendingPathComponent("\(item)_s\(slot).wav").path, sampleRate: 8000, format: .wavFloat)
            }
        }
        let items = try EvalDataset.discover(root: root, estimatesDir: est.path)
        var seen: [Int] = []
        let result = EvalDataset.score(items, trim: false, progress: { k, n in seen.append(k); XCTAssertEqual(n, 3) })
        XCTAssertEqual(seen, [0, 1, 2])
        XCTAssertEqual(result.items.map(\.id), ["item01", "item02"])
        XCTAssertEqual(result.items.map(\.score.permutation), [[0, 1], [1, 0]])
        XCTAssertEqual(result.failures.count, 1)
        XCTAssertEqual((result.failures.first as? MetricsError)?.kind, .lengthMismatch)
        let s = try XCTUnwrap(result.summary)
        let snr = result.items.map(\.score.meanSISNR), snri = result.items.map { $0.score.meanSISNRi! }
        XCTAssertEqual(s.count, 2)
        XCTAssertEqual(s.siSNRMean, (snr[0] + snr[1]) / 2, accuracy: 1e-12)
        XCTAssertEqual(s.siSNRMedian, s.siSNRMean, accuracy: 1e-12)
        XCTAssertEqual(s.siSNRMin, snr.min()!)
        XCTAssertEqual(s.siSNRiMin, snri.min()!)
        XCTAssertGreaterThan(s.siSNRMin, 15)
        // With --trim the short item scores too.
        XCTAssertEqual(EvalDataset.score(items, trim: true).items.count, 3)
        XCTAssertNil(EvalDataset.summarize([]))
    }

    func testMedian() {
        XCTAssertEqual(median([3, 1, 2]), 2)
        XCTAssertEqual(median([4, 1, 3, 2]), 2.5)
        XCTAssertTrue(median([]).isNaN)
    }
}
