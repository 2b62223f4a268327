// Scoring a whole LibriMix-style dataset: every item, then mean, median and worst.

import Foundation

// MARK: - Results

/// One mixture of a dataset and its score.
public struct ItemScore: Equatable, Sendable {
    public let id: String
    public let score: SeparationScore
}

/// Mean, median and worst (minimum) over items of the per-item means.
public struct DatasetSummary: Equatable, Sendable {
    public let count: Int
    public let siSNRMean: Double, siSNRMedian: Double, siSNRMin: Double
    public let siSNRiMean: Double, siSNRiMedian: Double, siSNRiMin: Double
}

/// What scoring a dataset gave: the items that scored, their summary (nil when none did), and
/// the errors of those that could not be scored, in item order.
public struct DatasetScore {
    public let items: [ItemScore]
    public let summary: DatasetSummary?
    public let failures: [Error]
}

// MARK: - Scoring

extension EvalDataset {
    /// Scores each item with `FileEvaluation.score` (mixture included, so SI-SNRi is known);
    /// an item that fails (`AudioError`, `MetricsError`) is kept in `failures` and the rest go on.
    /// `progress` receives (items done, items) before each item.
    public static func score(_ items: [EvalItem], trim: Bool, progress: ((Int, Int) -> Void)? = nil) -> DatasetScore {
        var scored: [ItemScore] = []
        var failures: [Error] = []
        for (k, item) in items.enumerated() {
            progress?(k, items.count)
            do {
                let s = try FileEvaluation.score(references: item.references, estimates: item.estimates,
                                                 mixture: item.mixture, trim: trim)
                scored.append(ItemScore(id: item.id, score: s))
            } catch {
                failures.append(error)
            }
        }
        return DatasetScore(items: scored, summary: summarize(scored), failures: failures)
    }

    /// Mean, median and minimum of the items' mean SI-SNR and SI-SNRi; nil for no items.
    public static func summarize(_ items: [ItemScore]) -> DatasetSummary? {
        guard !items.isEmpty else { return nil }
        let snr = items.map(\.score.meanSISNR), snri = items.map { $0.score.meanSISNRi ?? .nan }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
        return DatasetSummary(count: items.count,
                              siSNRMean: mean(snr), siSNRMedian: median(snr), siSNRMin: snr.min()!,
                              siSNRiMean: mean(snri), siSNRiMedian: median(snri), siSNRiMin: snri.min()!)
    }
}

/// The median of a list (mean of the middle two for even counts; NaN when empty).
public func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    let n = s.count
    if n == 0 { return .nan }
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}
