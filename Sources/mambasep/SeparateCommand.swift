import ArgumentParser
import Foundation
import MambaSep

// MARK: - separate

/// `mambasep separate MIX... [-o DIR] [--model NAME|PATH] [--format F] [--window S] [--threads N]`.
struct SeparateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "separate",
        abstract: "Split mixtures into one file per speaker (DIR/<stem>_s1.wav, DIR/<stem>_s2.wav, ...).",
        discussion: """
        Outputs have the input's sample rate and exactly its length (16-bit WAV unless --format \
        says otherwise). Long inputs are processed in overlapping windows in bounded memory; the \
        speaker order is kept consistent from window to window. Integer formats clip samples \
        beyond full scale; a warning then says how many, and --format float keeps them.
        """)

    @Argument(help: "Mixture audio files (WAV, FLAC, Ogg, ... any rate; multi-channel input is mixed to mono).")
    var mixtures: [String] = []

    @Option(name: .shortAndLong, help: "Output folder (created if missing).")
    var output: String = "."

    @OptionGroup var engine: EngineOptions

    @Option(help: "Output format: wav16, wav24, float (32-bit float WAV) or flac.")
    var format: OutputFormat = .wav16

    @Option(help: "Window length in seconds for long inputs.")
    var window: Double = WindowPlan.standardOffline.windowSeconds

    @Option(help: "Overlap between consecutive windows, in seconds.")
    var overlap: Double = WindowPlan.standardOffline.lookAheadSeconds

    func validate() throws {
        if mixtures.isEmpty { throw ValidationError("give at least one mixture file") }
        do { try plan.validate() } catch { throw ValidationError("\(error)") }
    }

    private var plan: WindowPlan { .offline(window: window, overlap: overlap) }

    /// `--format` values and the writer formats they select.
    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case wav16, wav24, float, flac

        var file: AudioFileFormat {
            switch self {
            case .wav16: return .wav16
            case .wav24: return .wav24
            case .float: return .wavFloat
            case .flac: return .flac
            }
        }
    }

    private var fileFormat: AudioFileFormat { format.file }

    func run() throws {
        // Ctrl-C, SIGTERM, SIGHUP: delete the unfinished temporary files, exit 130/143/129.
        InterruptCleanup.installSignalHandlers()
        try reportingErrors {
            let modelURL = try ModelStore.resolve(engine.model)
            let m = try ModelStore.load(engine.model)
            // Check every input before touching the output folder.
            var protected = ProtectedFiles()
            protected.add(path: modelURL.path)
            for mix in mixtures {
                if mix == "-" {
                    throw CLIFailure("<stdin>: standard input is not a file; use `mambasep stream` to separate audio from a pipe")
                }
                _ = try AudioFile.info(mix)
                protected.add(path: mix)
            }
            let folder = try OutputFolder(output)
            do {
                try separateAll(model: m, into: folder.path, protecting: protected)
            } catch {
                folder.removeIfUnused()
                throw error
            }
        }
    }

    /// Plans every output (name clashes and outputs that are inputs fail before any work), then
    /// separates each input in turn.
    private func separateAll(model m: DPMamba, into dir: String, protecting protected: ProtectedFiles) throws {
        var jobs: [(input: String, outputs: [String])] = []
        var seen: [String: String] = [:]
        let ext = fileFormat.fileExtension
        for mix in mixtures {
            let stem = URL(fileURLWithPath: mix).deletingPathExtension().lastPathComponent
            if let other = seen[stem] {
                throw CLIFailure("\(mix) and \(other) would both write \(stem)_s1.\(ext); separate them into different folders")
            }
            seen[stem] = mix
            let outs = (1...m.config.numSpeakers).map { (dir as NSString).appendingPathComponent("\(stem)_s\($0).\(ext)") }
            for o in outs { try protected.check(output: o) }
            jobs.append((mix, outs))
        }
        let separator = Separator(model: m, threads: engine.threads)
        let showProgress = stderrIsTerminal
        for (i, job) in jobs.enumerated() {
            let label = jobs.count > 1 ? "[\(i + 1)/\(jobs.count)] \(job.input)" : job.input
            let bar = ProgressBar(label: label, enabled: showProgress)
            let clipped: [Int]
            do {
                clipped = try separateFile(job.input, outputs: job.outputs, separator: separator,
                                           plan: plan, format: fileFormat, progress: { bar.update($0) })
            } catch let e as SeparationError {
                bar.done()
                throw CLIFailure("\(job.input): \(e)")
            }
            bar.done()
            for o in job.outputs { print(o) }
            for (o, n) in zip(job.outputs, clipped) where n > 0 {
                printError("warning: \(o): \(n) samples beyond full scale were clipped; --format float keeps them")
            }
        }
    }
}
