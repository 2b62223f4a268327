import ArgumentParser
import Foundation
import MambaSep

// MARK: - mambasep eval

/// `mambasep eval`: SI-SNR and SI-SNRi of separated audio, for one mixture or a dataset folder.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score separated audio against references (SI-SNR, SI-SNRi, best speaker permutation).",
        discussion: """
        One mixture:
          mambasep eval --ref s1.wav s2.wav --est e1.wav e2.wav [--mix mix.wav]
        A dataset (DIR holds mix_clean/ or mix/, s1/, s2/, ... with the same file names;
        EST holds <stem>_s1.wav, <stem>_s2.wav, ... for each mixture <stem>):
          mambasep eval DIR --est-dir EST [--json | --csv]

        SI-SNR removes each signal's mean (epsilon 1e-8); SI-SNRi subtracts the SI-SNR of the
        mixture. Estimates are matched to references by the best mean SI-SNR over all
        permutations (Hungarian assignment beyond 4 sources); permutation[i] is the 0-based
        index of the estimate matched to reference i. Multi-channel files are mixed to mono.
        """
    )

    @Argument(help: "A LibriMix-style dataset folder (dataset mode).")
    var datasetDir: String?

    @Option(name: .customLong("est-dir"), help: "Folder of estimates <stem>_s1.wav, ... (dataset mode).")
    var estimatesDir: String?

    @Option(name: .customLong("ref"), parsing: .upToNextOption, help: "Reference source files (one-mixture mode).")
    var references: [String] = []

    @Option(name: .customLong("est"), parsing: .upToNextOption, help: "Estimated source files, any order (one-mixture mode).")
    var estimates: [String] = []

    @Option(name: .customLong("mix"), help: "The mixture, to report SI-SNRi (one-mixture mode).")
    var mixture: String?

    @Flag(help: "Cut all signals to the shortest instead of failing on different lengths.")
    var trim = false

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(help: "Print CSV rows instead of a table.")
    var csv = false

    func validate() throws {
        if json && csv { throw ValidationError("choose one of --json and --csv") }
        let singleMode = !references.isEmpty || !estimates.isEmpty || mixture != nil
        if datasetDir != nil || estimatesDir != nil {
            if singleMode { throw ValidationError("give either DIR --est-dir EST or --ref/--est, not both") }
            guard datasetDir != nil else { throw ValidationError("--est-dir needs a dataset folder DIR") }
            guard estimatesDir != nil else { throw ValidationError("dataset mode needs --est-dir EST") }
        } else {
            guard !references.isEmpty, !estimates.isEmpty else {
                throw ValidationError("give --ref and --est files, or a dataset folder with --est-dir")
            }
            guard references.count == estimates.count else {
                throw ValidationError("\(references.count) --ref file(s) but \(estimates.count) --est file(s); the counts must match")
            }
        }
    }

    func run() throws {
        try reportingErrors {
            if let dir = datasetDir, let est = estimatesDir {
                try runDataset(dir: dir, estimatesDir: est)
            } else {
                try runSingle()
            }
        }
    }

    // MARK: One mixture

    struct SourceRow: Encodable {
        let reference: String
        let estimate: String
        let si_snr: Double
        let si_snri: Double?
    }

    struct SingleReport: Encodable {
        let permutation: [Int]
        let si_snr_mean: Double
        let si_snri_mean: Double?
        let sources: [SourceRow]
    }

    func runSingle() throws {
        let score: SeparationScore
        do {
            score = try FileEvaluation.score(references: references, estimates: estimates, mixture: mixture, trim: trim)
        } catch let e as MetricsError where e.kind == .lengthMismatch {
            throw CLIFailure(Self.failureLine(e))
        }
        let rows = references.indices.map { i in
            SourceRow(reference: references[i], estimate: estimates[score.permutation[i]],
                      si_snr: score.siSNR[i], si_snri: score.siSNRi?[i])
        }
        if json {
            print(try jsonText(SingleReport(permutation: score.permutation, si_snr_mean: score.meanSISNR,
                                            si_snri_mean: score.meanSISNRi, sources: rows)))
        } else if csv {
            print("source,reference,estimate,si_snr,si_snri")
            for (i, r) in rows.enumerated() {
                print(["s\(i + 1)", csvField(r.reference), csvField(r.estimate), "\(r.si_snr)",
                       r.si_snri.map { "\($0)" } ?? ""].joined(separator: ","))
            }
        } else {
            var table = [["source", "reference", "estimate", "SI-SNR (dB)"] + (mixture != nil ? ["SI-SNRi (dB)"] : [])]
            for (i, r) in rows.enumerated() {
                table.append(["s\(i + 1)", r.reference, r.estimate, fixed(r.si_snr)] + (r.si_snri.map { [fixed($0)] } ?? []))
            }
            table.append(["mean", "", "", fixed(score.meanSISNR)] + (score.meanSISNRi.map { [fixed($0)] } ?? []))
            print(renderTable(table, rightAligned: [3, 4]))
        }
    }

    // MARK: Dataset

    /// One line for an item that could not be scored.
    static func failureLine(_ error: Error) -> String {
        if let e = error as? MetricsError, e.kind == .lengthMismatch { return "\(e.description) (use --trim to cut to the shortest)" }
        return "\(error)"
    }

    struct ItemRow: Encodable {
        let id: String
        let si_snr: Double
        let si_snri: Double
        let permutation: [Int]
        let si_snr_per_source: [Double]
        let si_snri_per_source: [Double]
    }

    struct Summary: Encodable {
        let count: Int
        let si_snr_mean: Double
        let si_snr_median: Double
        let si_snr_min: Double
        let si_snri_mean: Double
        let si_snri_median: Double
        let si_snri_min: Double
    }

    struct DatasetReport: Encodable {
        let summary: Summary
        let items: [ItemRow]
    }

    func runDataset(dir: String, estimatesDir: String) throws {
        let items = try EvalDataset.discover(root: dir, estimatesDir: estimatesDir)
        let progress = stderrIsTerminal
        let result = EvalDataset.score(items, trim: trim, progress: { k, n in
            if progress { FileHandle.standardError.write(Data("\rscoring \(k + 1)/\(n)".utf8)) }
        })
        if progress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        if !result.failures.isEmpty { throw CLIFailure(result.failures.map(Self.failureLine)) }
        guard let s = result.summary else { return }
        let rows = result.items.map { item in
            ItemRow(id: item.id, si_snr: item.score.meanSISNR, si_snri: item.score.meanSISNRi ?? .nan,
                    permutation: item.score.permutation, si_snr_per_source: item.score.siSNR,
                    si_snri_per_source: item.score.siSNRi ?? [])
        }
        let summary = Summary(count: s.count, si_snr_mean: s.siSNRMean, si_snr_median: s.siSNRMedian, si_snr_min: s.siSNRMin,
                              si_snri_mean: s.siSNRiMean, si_snri_median: s.siSNRiMedian, si_snri_min: s.siSNRiMin)
        if json {
            print(try jsonText(DatasetReport(summary: summary, items: rows)))
        } else if csv {
            let n = rows.first?.permutation.count ?? 0
            let perSource = (1...max(n, 1)).flatMap { ["si_snr_s\($0)", "si_snri_s\($0)"] }
            print((["id", "si_snr", "si_snri", "permutation"] + perSource).joined(separator: ","))
            for r in rows {
                var fields = [csvField(r.id), "\(r.si_snr)", "\(r.si_snri)", r.permutation.map(String.init).joined(separator: " ")]
                for i in r.si_snr_per_source.indices { fields += ["\(r.si_snr_per_source[i])", "\(r.si_snri_per_source[i])"] }
                print(fields.joined(separator: ","))
            }
        } else {
            print("items: \(summary.count)")
            print(renderTable([
                ["", "mean", "median", "worst"],
                ["SI-SNRi (dB)", fixed(summary.si_snri_mean), fixed(summary.si_snri_median), fixed(summary.si_snri_min)],
                ["SI-SNR (dB)", fixed(summary.si_snr_mean), fixed(summary.si_snr_median), fixed(summary.si_snr_min)],
            ], rightAligned: [1, 2, 3]))
        }
    }
}
