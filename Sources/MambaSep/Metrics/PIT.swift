import Foundation

// MARK: - Permutation-invariant scoring

/// The score of a set of estimates against references after the best speaker assignment.
public struct SeparationScore: Equatable, Sendable {
    /// `permutation[i]` is the index (from 0) of the estimate matched to reference `i`.
    public let permutation: [Int]
    /// SI-SNR (dB) of each reference's matched estimate, in reference order.
    public let siSNR: [Double]
    /// SI-SNRi (dB) per reference, when a mixture was given.
    public let siSNRi: [Double]?
    /// SI-SNR (dB) of the mixture against each reference, when a mixture was given.
    public let mixtureSISNR: [Double]?

    /// Mean SI-SNR over references (the PIT objective).
    public var meanSISNR: Double { siSNR.reduce(0, +) / Double(max(siSNR.count, 1)) }
    /// Mean SI-SNRi over references, when a mixture was given.
    public var meanSISNRi: Double? { siSNRi.map { $0.reduce(0, +) / Double(max($0.count, 1)) } }
}

extension Metrics {
    /// Pairwise SI-SNR matrix: `m[i][j]` = SI-SNR of estimate `j` against reference `i`.
    public static func pairwiseSISNR(estimates: [[Float]], references: [[Float]]) throws -> [[Double]] {
        try references.map { r in try estimates.map { e in try siSNR(estimate: e, target: r) } }
    }

    /// Permutation-invariant SI-SNR: best mean over assignments (all permutations up to 4
    /// sources, Hungarian beyond), plus SI-SNRi when `mixture` is given.
    ///
    /// SI-SNRi of reference `i` = SI-SNR(matched estimate, ref i) − SI-SNR(mixture, ref i).
    /// Throws `.countMismatch` when the counts differ or are zero, `.lengthMismatch` when any
    /// signal differs in length from the first reference, `.empty` for empty signals. It does
    /// not reject silent references (see `checkReference(_:name:)`).
    public static func permutationInvariant(estimates: [[Float]], references: [[Float]],
                                            mixture: [Float]? = nil) throws -> SeparationScore {
        guard !references.isEmpty else { throw MetricsError(.countMismatch, "no reference signals given") }
        guard estimates.count == references.count else {
            throw MetricsError(.countMismatch,
                               "\(estimates.count) estimate(s) for \(references.count) reference(s); the counts must match")
        }
        let n = references[0].count
        for (k, s) in (references + estimates + (mixture.map { [$0] } ?? [])).enumerated() where s.count != n {
            throw MetricsError(.lengthMismatch, "signal \(k) has \(s.count) samples, expected \(n)")
        }
        let m = try pairwiseSISNR(estimates: estimates, references: references)
        let p = try Assignment.best(m)
        let si = p.enumerated().map { m[$0.offset][$0.element] }
        var imp: [Double]? = nil
        var mixScores: [Double]? = nil
        if let mixture {
            let base = try references.map { try siSNR(estimate: mixture, target: $0) }
            mixScores = base
            imp = zip(si, base).map { $0 - $1 }
        }
        return SeparationScore(permutation: p, siSNR: si, siSNRi: imp, mixtureSISNR: mixScores)
    }

    /// SI-SNRi of one estimate for one reference given the mixture.
    public static func siSNRi(estimate: [Float], target: [Float], mixture: [Float]) throws -> Double {
        try siSNR(estimate: estimate, target: target) - siSNR(estimate: mixture, target: target)
    }
}
