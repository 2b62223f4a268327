import Foundation

// MARK: - Scoring audio files

/// Scores separated files against reference files, with the checks a user-facing tool needs.
public enum FileEvaluation {
    /// Reads references, estimates and an optional mixture (mono, channel mix) and scores them
    /// with `Metrics.permutationInvariant`.
    ///
    /// Every file must read cleanly (`AudioError` otherwise) and share the first reference's
    /// sample rate (`MetricsError.rateMismatch`). Lengths must match exactly unless `trim` is
    /// true, in which case every signal is cut to the shortest (`MetricsError.lengthMismatch`
    /// otherwise). A silent reference is `MetricsError.silentReference`, a silent mixture
    /// `.silentMixture`. Errors name the file.
    public static func score(references: [String], estimates: [String], mixture: String?,
                             trim: Bool) throws -> SeparationScore {
        guard !references.isEmpty else { throw MetricsError(.countMismatch, "no reference files given") }
        guard references.count == estimates.count else {
            throw MetricsError(.countMismatch,
                               "\(estimates.count) estimate file(s) for \(references.count) reference file(s); the counts must match")
        }
        let paths = references + estimates + (mixture.map { [$0] } ?? [])
        var signals: [[Float]] = []
        var rate = 0
        for (k, p) in paths.enumerated() {
            let a = try AudioFile.read(p)
            if k == 0 {
                rate = a.sampleRate
            } else if a.sampleRate != rate {
                throw MetricsError(.rateMismatch,
                                   "\(p): sample rate \(a.sampleRate) Hz differs from \(rate) Hz of \(references[0])")
            }
            signals.append(a.samples)
        }
        let shortest = signals.map(\.count).min() ?? 0
        if let k = signals.firstIndex(where: { $0.count != signals[0].count }) {
            if !trim {
                throw MetricsError(.lengthMismatch,
                                   "\(paths[k]): \(signals[k].count) samples but \(paths[0]) has \(signals[0].count)")
            }
            signals = signals.map { Array($0.prefix(shortest)) }
        }
        let r = references.count
        for i in 0..<r { try Metrics.checkReference(signals[i], name: references[i]) }
        if let mixture { try Metrics.checkMixture(signals[2 * r], name: mixture) }
        for i in r..<(2 * r) {
            if signals[i].contains(where: { !$0.isFinite }) {
                throw MetricsError(.nonFinite, "\(paths[i]): holds NaN or Inf samples")
            }
        }
        return try Metrics.permutationInvariant(estimates: Array(signals[r..<(2 * r)]),
                                                references: Array(signals[0..<r]),
                                                mixture: mixture == nil ? nil : signals[2 * r])
    }
}

// MARK: - LibriMix-style datasets

/// One mixture of a LibriMix-style folder and the files that go with it.
public struct EvalItem: Equatable, Sendable {
    /// The mixture's file name without extension.
    public let id: String
    public let mixture: String
    /// `s1/…`, `s2/…`, … in order.
    public let references: [String]
    /// `<est>/<id>_s1.<ext>`, … in order.
    public let estimates: [String]
}

/// Problems found while pairing a dataset folder with an estimates folder; one line each.
public struct DatasetError: Error, CustomStringConvertible, Equatable {
    public let lines: [String]
    public init(_ lines: [String]) { self.lines = lines }
    public var description: String { lines.joined(separator: "\n") }
}

/// Discovery of LibriMix-style evaluation sets: `DIR/mix_clean/` (or `mix/`), `DIR/s1/`,
/// `DIR/s2/`, … with the same file names, and estimates `EST/<stem>_s1.wav`, ….
public enum EvalDataset {
    /// Audio extensions looked for, in order of preference.
    public static let audioExtensions = ["wav", "flac", "ogg", "opus", "aiff", "aif", "au", "w64", "caf"]

    /// Lists the items of `root`, matched with estimates in `estimatesDir`, sorted by id.
    ///
    /// Throws `DatasetError` listing every problem at once: a missing or non-folder root or
    /// estimates folder, no `mix_clean/`/`mix/` or `s1/`, no mixtures, and each missing reference
    /// or estimate file (named by the path that was expected).
    public static func discover(root: String, estimatesDir: String) throws -> [EvalItem] {
        let fm = FileManager.default
        func isDir(_ p: String) -> Bool {
            var d: ObjCBool = false
            return fm.fileExists(atPath: p, isDirectory: &d) && d.boolValue
        }
        var problems: [String] = []
        for (p, what) in [(root, "dataset folder"), (estimatesDir, "estimates folder")] where !isDir(p) {
            problems.append(fm.fileExists(atPath: p) ? "\(p): is a file, expected a \(what)" : "\(p): no such \(what)")
        }
        if !problems.isEmpty { throw DatasetError(problems) }
        let rootURL = URL(fileURLWithPath: root)
        guard let mixDir = ["mix_clean", "mix"].map({ rootURL.appendingPathComponent($0).path }).first(where: isDir) else {
            throw DatasetError(["\(root): no mix_clean/ or mix/ folder (expected a LibriMix-style layout)"])
        }
        var sourceDirs: [String] = []
        while isDir(rootURL.appendingPathComponent("s\(sourceDirs.count + 1)").path) {
            sourceDirs.append(rootURL.appendingPathComponent("s\(sourceDirs.count + 1)").path)
        }
        guard !sourceDirs.isEmpty else { throw DatasetError(["\(root): no s1/ folder of reference sources"]) }
        let names = ((try? fm.contentsOfDirectory(atPath: mixDir)) ?? [])
            .filter { !$0.hasPrefix(".") && audioExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted()
        guard !names.isEmpty else { throw DatasetError(["\(mixDir): holds no audio files"]) }
        let estURL = URL(fileURLWithPath: estimatesDir)
        var items: [EvalItem] = []
        for name in names {
            let stem = (name as NSString).deletingPathExtension
            var refs: [String] = []
            for d in sourceDirs {
                let p = (d as NSString).appendingPathComponent(name)
                if fm.fileExists(atPath: p) { refs.append(p) } else {
                    problems.append("\(p): missing reference (counterpart of \((mixDir as NSString).appendingPathComponent(name)))")
                }
            }
            var ests: [String] = []
            for k in 1...sourceDirs.count {
                let candidates = audioExtensions.map { estURL.appendingPathComponent("\(stem)_s\(k).\($0)").path }
                if let p = candidates.first(where: { fm.fileExists(atPath: $0) }) { ests.append(p) } else {
                    problems.append("\(candidates[0]): missing estimate for mixture \(stem)")
                }
            }
            if refs.count == sourceDirs.count && ests.count == sourceDirs.count {
                items.append(EvalItem(id: stem, mixture: (mixDir as NSString).appendingPathComponent(name),
                                      references: refs, estimates: ests))
            }
        }
        if !problems.isEmpty { throw DatasetError(problems) }
        return items
    }
}
