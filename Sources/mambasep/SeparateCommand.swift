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
    var window: Double = WindowSettings.standard.windowSeconds

    @Option(help: "Overlap between consecutive windows, in seconds.")
    var overlap: Double = WindowSettings.standard.overlapSeconds

    func validate() throws {
        if mixtures.isEmpty { throw ValidationError("give at least one mixture file") }
        _ = try settings.samples(at: 8000)
    }

    private var settings: WindowSettings { WindowSettings(windowSeconds: window, overlapSeconds: overlap) }

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
        try reportingErrors {
            let m = try ModelStore.load(engine.model)
            let dir = try prepareOutputFolder(output)
            // Plan every output first: missing inputs and name clashes fail before any work.
            var plans: [(input: String, outputs: [String])] = []
            var seen: [String: String] = [:]
            for mix in mixtures {
                _ = try AudioFile.info(mix)
                let stem = URL(fileURLWithPath: mix).deletingPathExtension().lastPathComponent
                if let other = seen[stem] {
                    throw CLIFailure("\(mix) and \(other) would both write \(stem)_s1.\(fileFormat.fileExtension); separate them into different folders")
                }
                seen[stem] = mix
                let ext = fileFormat.fileExtension
                let outs = (1...m.config.numSpeakers).map { (dir as NSString).appendingPathComponent("\(stem)_s\($0).\(ext)") }
                plans.append((mix, outs))
            }
            let separator = Separator(model: m, threads: engine.threads)
            let showProgress = stderrIsTerminal
            for (i, plan) in plans.enumerated() {
                let label = plans.count > 1 ? "[\(i + 1)/\(plans.count)] \(plan.input)" : plan.input
                let bar = ProgressBar(label: label, enabled: showProgress)
                let clipped = try separateFile(plan.input, outputs: plan.outputs, separator: separator,
                                               modelRate: m.config.sampleRate, settings: settings,
                                               format: fileFormat, progress: { bar.update($0) })
                bar.done()
                for o in plan.outputs { print(o) }
                for (o, n) in zip(plan.outputs, clipped) where n > 0 {
                    printError("warning: \(o): \(n) samples beyond full scale were clipped; --format float keeps them")
                }
            }
        }
    }
}

// MARK: - Helpers

/// Creates `path` if needed and checks that files can be created in it; returns the path.
func prepareOutputFolder(_ path: String) throws -> String {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: path, isDirectory: &isDir) {
        guard isDir.boolValue else { throw CLIFailure("output folder \(path) exists and is not a folder") }
    } else {
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw CLIFailure("cannot create output folder \(path): \((error as NSError).localizedDescription)")
        }
    }
    // access(2) is not enough under root or on read-only mounts: create and remove a probe file.
    let probe = (path as NSString).appendingPathComponent(".mambasep-write-test-\(getpid())")
    guard fm.createFile(atPath: probe, contents: Data()) else {
        throw CLIFailure("output folder \(path) is not writable")
    }
    try? fm.removeItem(atPath: probe)
    return path
}

/// A one-line progress bar on stderr, redrawn in place; silent when disabled.
final class ProgressBar {
    let label: String
    let enabled: Bool
    private var lastPercent = -1

    init(label: String, enabled: Bool) {
        self.label = label
        self.enabled = enabled
    }

    func update(_ fraction: Double) {
        guard enabled else { return }
        let pct = Int((min(max(fraction, 0), 1) * 100).rounded(.down))
        guard pct != lastPercent else { return }
        lastPercent = pct
        let width = 30
        let filled = pct * width / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(String(format: "%3d", pct))% \(label)".utf8))
    }

    func done() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
