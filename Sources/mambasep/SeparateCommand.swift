import ArgumentParser
import Foundation
import MambaSep

// MARK: - separate

/// `mambasep separate MIX... [--list FILE] [--shard K/N|slurm] [--skip-existing] [--keep-going] [--report FILE]
/// [-o DIR] [--model NAME|PATH] [--format F] [--window S] [--threads N]`.
struct SeparateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "separate",
        abstract: "Split mixtures into one file per speaker (DIR/<stem>_s1.wav, DIR/<stem>_s2.wav, ...).",
        discussion: """
        Outputs have the input's sample rate and exactly its length (16-bit WAV unless --format \
        says otherwise). Long inputs are processed in overlapping windows in bounded memory; the \
        speaker order is kept consistent from window to window. Integer formats clip samples \
        beyond full scale; a warning then says how many, and --format float keeps them.

        Large collections: --list reads the inputs from a file, --shard gives each task of a job \
        array its share, --skip-existing resumes a run, --keep-going goes past bad inputs (exit \
        status 1 if any failed) and --report records each input as one JSON line. These runs end \
        with a line of counts on stderr.
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

    @Option(name: .customLong("list"),
            help: ArgumentHelp("A file naming inputs, one path per line ('-': standard input); blank lines and lines starting with # are ignored. Its paths follow the arguments; may be repeated.",
                               valueName: "file"))
    var lists: [String] = []

    @Option(help: ArgumentHelp("Separate only this task's share: K/N takes the inputs at list positions K, K+N, K+2N, ... (K from 1 to N), so N tasks cover the list exactly once; 'slurm' takes K and N from the Slurm job array (SLURM_ARRAY_TASK_ID, _MIN, _STEP, _COUNT).",
                               valueName: "K/N|slurm"))
    var shard: String?

    @Flag(help: "Skip an input whose every output already exists (outputs appear only when complete, so a rerun resumes).")
    var skipExisting = false

    @Flag(help: "Report a bad input and go on with the next; the exit status is then 1.")
    var keepGoing = false

    @Option(help: ArgumentHelp("Append one JSON line per input to this file as it ends: input, outputs, status (ok, skipped, failed), error, duration_s, wall_s, rtf, clipped_samples.",
                               valueName: "file.jsonl"))
    var report: String?

    func validate() throws {
        if mixtures.isEmpty && lists.isEmpty { throw ValidationError("give at least one mixture file, or --list FILE") }
        if lists.filter({ $0 == "-" }).count > 1 { throw ValidationError("--list - (standard input) can be given only once") }
        if let shard {
            do { _ = try Shard.parse(shard) } catch { throw ValidationError("\(error)") }
        }
        if report == "-" { throw ValidationError("--report needs a file (standard output lists the outputs)") }
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

    /// Whether any of the options for large collections is given (the run then ends with a
    /// line of counts on stderr).
    private var isBatch: Bool { !lists.isEmpty || shard != nil || skipExisting || keepGoing || report != nil }

    /// One input and its planned outputs.
    private struct Job {
        let input: String
        let outputs: [String]
    }

    func run() throws {
        // Ctrl-C, SIGTERM, SIGHUP: delete the unfinished temporary files, exit 130/143/129.
        InterruptCleanup.installSignalHandlers()
        // A file-size limit (ulimit -f) must give a write error (EFBIG) to report, not kill us.
        signal(SIGXFSZ, SIG_IGN)
        try reportingErrors {
            let modelURL = try ModelStore.resolve(engine.model)
            let m = try ModelStore.load(engine.model)
            var inputs = mixtures
            for list in lists { inputs += try InputList.read(list) }
            if inputs.isEmpty {
                throw CLIFailure("\(lists.joined(separator: ", ")): no input paths (only blank lines and comments)")
            }
            // Inputs of the whole list (not only this shard's), lists and model: no output may replace one.
            var protected = ProtectedFiles()
            protected.add(path: modelURL.path)
            for list in lists where list != "-" { protected.add(path: list) }
            for input in inputs where input != "-" { protected.add(path: input) }
            let jobs = try planOutputs(inputs, speakers: m.config.numSpeakers, protecting: protected)
            let reportFile = try report.map { try openReport($0, jobs: jobs, protecting: protected) }
            let share = try shard.map { try Shard.parse($0) }
            let mine = share.map { s in s.select(jobs).map(\.item) } ?? jobs
            try separateAll(mine, of: jobs.count, shard: share, model: m, report: reportFile)
        }
    }

    /// Plans every output of every input (name clashes and outputs that are inputs fail before
    /// any work, the same way in every shard).
    private func planOutputs(_ inputs: [String], speakers: Int, protecting protected: ProtectedFiles) throws -> [Job] {
        var jobs: [Job] = []
        var seen: [String: String] = [:]
        let ext = fileFormat.fileExtension
        for mix in inputs {
            let stem = URL(fileURLWithPath: mix).deletingPathExtension().lastPathComponent
            if let other = seen[stem] {
                if other == mix { throw CLIFailure("\(mix) is given twice; name each input once") }
                throw CLIFailure("\(mix) and \(other) would both write \(stem)_s1.\(ext); separate them into different folders")
            }
            seen[stem] = mix
            let outs = (1...speakers).map { (output as NSString).appendingPathComponent("\(stem)_s\($0).\(ext)") }
            for o in outs { try protected.check(output: o) }
            jobs.append(Job(input: mix, outputs: outs))
        }
        return jobs
    }

    /// Opens the report for appending once it is known to be neither an input nor an output.
    private func openReport(_ path: String, jobs: [Job], protecting protected: ProtectedFiles) throws -> BatchReport {
        if let victim = protected.owner(of: path) {
            let same = victim == path ? "" : " (\(victim))"
            throw CLIFailure("report \(path) is an input of this run\(same); refusing to append to it: choose another report file")
        }
        var reportFile = ProtectedFiles()
        reportFile.add(path: path)
        // By file and resolved folder, or (for a folder that does not exist yet) by spelling.
        let spelled = URL(fileURLWithPath: path).standardizedFileURL.path
        for job in jobs {
            for o in job.outputs where reportFile.owner(of: o) != nil || URL(fileURLWithPath: o).standardizedFileURL.path == spelled {
                throw CLIFailure("output \(o) is the report file \(path); choose another report file or output folder")
            }
        }
        return try BatchReport(path: path)
    }

    /// Whether every output exists under its final name (so, complete: outputs appear only by rename).
    private func complete(_ job: Job) -> Bool {
        job.outputs.allSatisfy { o in
            var st = stat()
            return stat(o, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        }
    }

    /// Header facts of an input; standard input is `stream`'s.
    private func inputInfo(_ input: String) throws -> AudioInfo {
        if input == "-" {
            throw CLIFailure("<stdin>: standard input is not a file; use `mambasep stream` to separate audio from a pipe")
        }
        return try AudioFile.info(input)
    }

    /// One line naming the input and what is wrong with it.
    private func failureMessage(_ error: Error, input: String) -> String {
        if let e = error as? SeparationError { return "\(input): \(e)" }
        return errorLines(error).joined(separator: "; ")
    }

    /// Separates this task's inputs in turn: checks them first (unless --keep-going, a bad one
    /// stops the run before any work), skips complete ones with --skip-existing, reports each.
    private func separateAll(_ jobs: [Job], of listed: Int, shard: Shard?, model m: DPMamba, report: BatchReport?) throws {
        let started = Date()
        var counts = (ok: 0, skipped: 0, failed: 0)
        var audioSeparated = 0.0
        /// The line of counts (only for runs with a collection option).
        func summary(stopped why: String? = nil) {
            guard isBatch else { return }
            let ended = counts.ok + counts.skipped + counts.failed
            var line = "mambasep: \(jobs.count) input\(jobs.count == 1 ? "" : "s")"
            if let shard { line += " (shard \(shard) of \(listed))" }
            line += ": \(counts.ok) separated, \(counts.skipped) skipped, \(counts.failed) failed"
            if let why, ended < jobs.count { line += ", \(jobs.count - ended) not started (\(why))" }
            line += "; \(BatchProgress.duration(audioSeparated)) of audio in \(BatchProgress.duration(Date().timeIntervalSince(started)))"
            printError(line)
        }
        func record(_ r: BatchRecord) throws {
            try report?.append(r)
            switch r.status {
            case .ok: counts.ok += 1
            case .skipped: counts.skipped += 1
            case .failed: counts.failed += 1
            }
        }

        // Check the inputs to separate (and measure them for the progress line) before any work;
        // an input whose outputs all exist is skipped with --skip-existing (looked at once).
        let done = jobs.map { skipExisting && complete($0) }
        var seconds = [Double?](repeating: nil, count: jobs.count)
        for (k, job) in jobs.enumerated() where !done[k] {
            do {
                seconds[k] = try inputInfo(job.input).duration
            } catch {
                if keepGoing { continue }          // reported in its turn
                let message = failureMessage(error, input: job.input)
                try record(BatchRecord(input: job.input, outputs: job.outputs, status: .failed, error: message))
                printError("error: \(message)")
                summary(stopped: "stopped at the first failure; --keep-going goes on")
                throw ExitCode.failure
            }
        }

        let folder = try OutputFolder(output)
        let separator = Separator(model: m, threads: engine.threads)
        let progress = BatchProgress(totalFiles: jobs.count, totalAudio: seconds.reduce(0) { $0 + ($1 ?? 0) },
                                     enabled: stderrIsTerminal)
        do {
            for (k, job) in jobs.enumerated() {
                let t0 = Date()
                if done[k] {
                    try record(BatchRecord(input: job.input, outputs: job.outputs, status: .skipped,
                                           wallSeconds: Date().timeIntervalSince(t0)))
                    progress.end(.skipped)
                    continue
                }
                progress.begin(job.input, seconds: seconds[k])
                var duration = seconds[k]               // nil: its check failed (--keep-going); again here
                do {
                    let length = try duration ?? inputInfo(job.input).duration
                    duration = length
                    let clipped = try separateFile(job.input, outputs: job.outputs, separator: separator,
                                                   plan: plan, format: fileFormat, progress: { progress.update($0) })
                    try record(BatchRecord(input: job.input, outputs: job.outputs, status: .ok, durationSeconds: length,
                                           wallSeconds: Date().timeIntervalSince(t0), clippedSamples: clipped))
                    audioSeparated += length
                    progress.clear()
                    for o in job.outputs { print(o) }
                    try flushStandardOutput()
                    for (o, n) in zip(job.outputs, clipped) where n > 0 {
                        printError("warning: \(o): \(n) samples beyond full scale were clipped; --format float keeps them")
                    }
                    progress.end(.ok)
                } catch let e as BatchError {
                    throw e                         // the report cannot be written: stop
                } catch let e as CLIFailure where e.lines.first?.hasPrefix("cannot write to standard output") == true {
                    throw e
                } catch {
                    let message = failureMessage(error, input: job.input)
                    try record(BatchRecord(input: job.input, outputs: job.outputs, status: .failed, error: message,
                                           durationSeconds: duration, wallSeconds: Date().timeIntervalSince(t0)))
                    progress.clear()
                    printError("error: \(message)")
                    progress.end(.failed)
                    // An output that cannot be written (a full disk, a vanished folder) is no bad input.
                    let outputProblem = (error as? AudioError).map { job.outputs.contains($0.path) } ?? false
                    if !keepGoing || outputProblem {
                        progress.finish()
                        summary(stopped: outputProblem ? "stopped: an output cannot be written"
                                                       : "stopped at the first failure; --keep-going goes on")
                        throw ExitCode.failure
                    }
                }
            }
        } catch {
            folder.removeIfUnused()
            throw error
        }
        progress.finish()
        summary()
        if counts.failed > 0 {
            try flushStandardOutput()
            folder.removeIfUnused()
            throw ExitCode.failure
        }
    }
}
