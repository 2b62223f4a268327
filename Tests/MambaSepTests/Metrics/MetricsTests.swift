import Foundation
import XCTest
@testable import MambaSep

/// SI-SNR golden values, PIT, Hungarian assignment and SI-SNRi properties.
final class MetricsTests: XCTestCase {
    private func noise(_ n: Int, _ rng: inout SeededRandom, scale: Double = 1) -> [Float] {
        (0..<n).map { _ in Float(rng.gaussian() * scale) }
    }

    // MARK: - SI-SNR

    func testGoldenValue() throws {
        let v = try Metrics.siSNR(estimate: [2.5, 0, 2, 8], target: [3, -0.5, 2, 7])
        XCTAssertEqual(v, 15.0918, accuracy: 1e-3)
    }

    func testScaleAndOffsetInvariance() throws {
        var rng = SeededRandom(seed: 1)
        let s = noise(1000, &rng)
        let e = zip(s, noise(1000, &rng, scale: 0.3)).map { $0 + $1 }
        let base = try Metrics.siSNR(estimate: e, target: s)
        let scaled = try Metrics.siSNR(estimate: e.map { $0 * 7 + 3 }, target: s)
        XCTAssertEqual(base, scaled, accuracy: 1e-6)
        // Noise at 0.3 of a unit-variance signal: ≈ 10·log10(1/0.09) ≈ 10.5 dB.
        XCTAssertEqual(base, 10.46, accuracy: 0.6)
        XCTAssertGreaterThan(try Metrics.siSNR(estimate: s, target: s), 70, "a perfect estimate is capped only by ε")
    }

    func testBadSignals() {
        XCTAssertThrowsError(try Metrics.siSNR(estimate: [], target: [])) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .empty)
        }
        XCTAssertThrowsError(try Metrics.siSNR(estimate: [1, 2], target: [1, 2, 3])) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .lengthMismatch)
        }
        XCTAssertThrowsError(try Metrics.checkReference([0.25, 0.25, 0.25], name: "s1.wav")) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .silentReference)
            XCTAssertTrue("\($0)".hasPrefix("s1.wav: "))
        }
        XCTAssertThrowsError(try Metrics.checkReference([0.1, .nan], name: "x")) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .nonFinite)
        }
        XCTAssertNoThrow(try Metrics.checkReference([0, 0.001, -0.001], name: "quiet but present"))
    }

    func testSNR() throws {
        XCTAssertEqual(try Metrics.snr(estimate: [1, 1], target: [2, 2]), 10 * log10(4.0), accuracy: 1e-9)
    }

    // MARK: - PIT

    func testPITFindsPermutationForTwoAndThreeSources() throws {
        var rng = SeededRandom(seed: 2)
        for (n, perm) in [(2, [1, 0]), (3, [2, 0, 1]), (3, [0, 2, 1]), (4, [3, 1, 0, 2])] {
            let refs = (0..<n).map { _ in noise(2000, &rng) }
            // Estimate j is a noisy copy of the reference that perm maps to it.
            var ests = [[Float]](repeating: [], count: n)
            for i in 0..<n { ests[perm[i]] = zip(refs[i], noise(2000, &rng, scale: 0.1)).map { $0 + $1 } }
            let score = try Metrics.permutationInvariant(estimates: ests, references: refs)
            XCTAssertEqual(score.permutation, perm, "n=\(n)")
            XCTAssertTrue(score.siSNR.allSatisfy { $0 > 15 }, "\(score.siSNR)")
            // The estimates in reference order score the same, with the identity permutation.
            let ordered = (0..<n).map { ests[perm[$0]] }
            let again = try Metrics.permutationInvariant(estimates: ordered, references: refs)
            XCTAssertEqual(again.permutation, Array(0..<n))
            XCTAssertEqual(again.meanSISNR, score.meanSISNR, accuracy: 1e-12)
            XCTAssertEqual(again.siSNR, score.siSNR)
        }
    }

    func testSISNRiOfMixtureIsZeroAndOfReferencesIsPositive() throws {
        var rng = SeededRandom(seed: 4)
        let refs = [noise(3000, &rng), noise(3000, &rng, scale: 0.5)]
        let mix = zip(refs[0], refs[1]).map { $0 + $1 }
        let self_ = try Metrics.permutationInvariant(estimates: [mix, mix], references: refs, mixture: mix)
        XCTAssertEqual(self_.siSNRi!, [0, 0])
        let perfect = try Metrics.permutationInvariant(estimates: refs, references: refs, mixture: mix)
        XCTAssertTrue(perfect.siSNRi!.allSatisfy { $0 > 60 })
        let single = try Metrics.siSNRi(estimate: mix, target: refs[0], mixture: mix)
        XCTAssertEqual(single, 0)
    }

    func testPITCountAndLengthErrors() {
        XCTAssertThrowsError(try Metrics.permutationInvariant(estimates: [[1, 2]], references: [[1, 2], [2, 1]])) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .countMismatch)
        }
        XCTAssertThrowsError(try Metrics.permutationInvariant(estimates: [[1, 2, 3]], references: [[1, 2]])) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .lengthMismatch)
        }
        XCTAssertThrowsError(try Metrics.permutationInvariant(estimates: [[1, 2]], references: [[1, 2]], mixture: [1])) {
            XCTAssertEqual(($0 as? MetricsError)?.kind, .lengthMismatch)
        }
        XCTAssertThrowsError(try Metrics.permutationInvariant(estimates: [], references: []))
    }

    // MARK: - Assignment

    func testPermutationsCount() {
        XCTAssertEqual(Assignment.permutations(4).count, 24)
        XCTAssertEqual(Set(Assignment.permutations(3)).count, 6)
    }

    func testHungarianEqualsBruteForce() throws {
        var rng = SeededRandom(seed: 5)
        for n in [1, 2, 3, 5, 6] {
            for _ in 0..<40 {
                let m = (0..<n).map { _ in (0..<n).map { _ in rng.gaussian() * 10 } }
                let h = Assignment.hungarian(m)
                let b = Assignment.bruteForce(m)
                XCTAssertEqual(Set(h), Set(0..<n), "a permutation")
                XCTAssertEqual(Assignment.total(m, h), Assignment.total(m, b), accuracy: 1e-9, "n=\(n)")
            }
        }
        XCTAssertEqual(try Assignment.best([]), [])
        XCTAssertThrowsError(try Assignment.best([[1, 2]]))
    }

    func testNaNScoresAreAnErrorAndNeverAnEmptyPermutation() {
        // All-NaN scores (a model whose output overflowed) used to give [] and a crash later.
        let nan = [[Double.nan, .nan], [.nan, .nan]]
        XCTAssertEqual(Assignment.bruteForce(nan), [0, 1])
        XCTAssertThrowsError(try Assignment.best(nan)) { XCTAssertEqual(($0 as? MetricsError)?.kind, .nonFinite) }
        XCTAssertThrowsError(try Assignment.best([[1, .infinity], [0, 1]]))
        XCTAssertEqual(bestPermutation(previous: [[.nan, 1], [2, 3]], next: [[1, 2], [3, .nan]]), [0, 1])
    }

    func testFiveSourcePITUsesHungarianAndFindsPermutation() throws {
        var rng = SeededRandom(seed: 6)
        let perm = [4, 2, 0, 1, 3]
        let refs = (0..<5).map { _ in noise(1500, &rng) }
        var ests = [[Float]](repeating: [], count: 5)
        for i in 0..<5 { ests[perm[i]] = zip(refs[i], noise(1500, &rng, scale: 0.5)).map { $0 + $1 } }
        let score = try Metrics.permutationInvariant(estimates: ests, references: refs)
        XCTAssertEqual(score.permutation, perm)
        let m = try Metrics.pairwiseSISNR(estimates: ests, references: refs)
        XCTAssertEqual(Assignment.total(m, score.permutation), Assignment.total(m, Assignment.bruteForce(m)), accuracy: 1e-9)
    }
}
