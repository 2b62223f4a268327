import ArgumentParser
import Foundation
import MambaSep

// MARK: - explain

/// `mambasep explain MIX [-o DIR] [--model M] [--start S] [--duration D] [--block B] [--path P]
/// [--chunk J] [--channels A-B] [--json]`: spectrograms and hidden-attention maps as PNGs.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Draw spectrograms of a mixture and its separated speakers, and Mamba's hidden attention.",
        discussion: """
        Runs one forward pass on an excerpt of MIX (at most \(Int(Explain.maxDuration)) s) and writes \
        DIR/<stem>_spectrograms.png (the mixture and each speaker, dB full scale) and \
        DIR/<stem>_attention.png: for each chosen block, the hidden attention of one path's \
        bidirectional Mamba layer (Ali, Zimerman & Wolf 2024), taken from that pass's own Δ, B and C: \
        the forward scan below the diagonal, the backward scan above, averaged over channels. \
        Intra maps show one chunk; inter maps span the excerpt, averaged over the positions in a chunk. \
        Prints the two paths (or, with --json, their sizes and the maps' shapes and layer names). \
        Nothing is written unless everything succeeds.
        """)

    @Argument(help: "The mixture audio file (any rate; multi-channel input is mixed to mono).")
    var mixture: String

    @Option(name: .shortAndLong, help: "Output folder (created if missing).")
    var output: String = "."

    @OptionGroup var engine: EngineOptions

    @Option(help: "Start of the excerpt, in seconds.")
    var start: Double = 0

    @Option(help: "Length of the excerpt, in seconds (default: to the end, at most \(Int(Explain.maxDuration)) s).")
    var duration: Double?

    @Option(help: "Blocks to draw: 'all', one index or a comma-separated list (0-based).")
    var block: String = "all"

    @Option(help: "Path of the dual-path blocks: intra (inside a chunk) or inter (across chunks).")
    var path: PathKind = .intra

    @Option(help: "Chunk an intra map shows (default: the middle one).")
    var chunk: Int?

    @Option(help: "Channels to average, 'A-B' (0-based, inclusive; default: all).")
    var channels: String?

    @Option(help: "Width of the spectrogram picture in pixels (\(SpectrogramFigure.widths.lowerBound)-\(SpectrogramFigure.widths.upperBound); each panel is 15 % as tall).")
    var width: Int = SpectrogramFigure.defaultWidth

    @Flag(help: "Print JSON (image paths and sizes, maps' layer names and shapes) instead of the paths.")
    var json = false

    /// `--block` as indices (nil: all).
    private var blockIndices: [Int]? {
        get throws {
            if block == "all" { return nil }
            let parts = block.split(separator: ",", omittingEmptySubsequences: false)
            let values = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard values.count == parts.count, !values.isEmpty else {
                throw ValidationError("--block must be 'all', an index or a comma-separated list, got '\(block)'")
            }
            return values
        }
    }

    /// `--channels` as a range.
    private var channelRange: ClosedRange<Int>? {
        get throws {
            guard let channels else { return nil }
            let parts = channels.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            if parts.count == 1, let a = parts[0] { return a...a }
            guard parts.count == 2, let a = parts[0], let b = parts[1], a <= b else {
                throw ValidationError("--channels must be 'A-B' with A ≤ B, got '\(channels)'")
            }
            return a...b
        }
    }

    func validate() throws {
        if !SpectrogramFigure.widths.contains(width) {
            throw ValidationError("--width must be between \(SpectrogramFigure.widths.lowerBound) and \(SpectrogramFigure.widths.upperBound) pixels")
        }
        _ = try blockIndices
        _ = try channelRange
    }

    struct Report: Encodable {
        struct Image: Encodable { let path: String; let width: Int; let height: Int }
        struct Map: Encodable {
            let layer: String
            let block: Int
            let path: PathKind
            let chunk: Int?
            let shape: [Int]
            let channels: [Int]
            let startSeconds: Double
            let stepSeconds: Double
        }
        let input: String
        let model: String
        let sampleRate: Int
        let startSeconds: Double
        let durationSeconds: Double
        let spectrograms: Image
        let fftSize: Int
        let hop: Int
        let attention: Image
        let maps: [Map]
    }

    func run() throws {
        // Ctrl-C, SIGTERM, SIGHUP: delete the unfinished temporary files, exit 130/143/129.
        InterruptCleanup.installSignalHandlers()
        try reportingErrors {
            if mixture == "-" { throw CLIFailure("<stdin>: standard input is not a file; give the mixture as a path") }
            let modelURL = try ModelStore.resolve(engine.model)
            let m = try ModelStore.load(engine.model)
            var protected = ProtectedFiles()
            protected.add(path: modelURL.path)
            protected.add(path: mixture)
            let rate = m.config.sampleRate
            let audio = try AudioFile.read(mixture, sampleRate: rate)
            let (samples, capped) = try Explain.excerpt(audio, start: start, duration: duration)
            if capped {
                printError("note: explaining \(fixed(start, 1))-\(fixed(start + Explain.maxDuration, 1)) s of "
                           + "\(fixed(audio.duration, 1)) s; choose another part with --start/--duration")
            }
            let blocks = try blockIndices ?? Array(0..<m.config.numBlocks)
            let layers = blocks.map { MambaLayerID(block: $0, path: path) }
            let result: Explanation
            do {
                result = try Explain.run(model: m, samples: samples, layers: layers, chunk: chunk,
                                         channels: try channelRange, threads: engine.threads)
            } catch let SeparationError.nonFiniteOutput(second, peak) {
                throw CLIFailure("\(mixture): \(SeparationError.nonFiniteOutput(second: start + second, inputPeak: peak))")
            }

            let seconds = Double(samples.count) / Double(rate)
            let signals = [("mixture", samples)] + result.estimates.enumerated().map { ("speaker \($0.offset + 1)", $0.element) }
            let spectra = signals.map { (title: $0.0, spectrogram: spectrogram($0.1, sampleRate: rate)) }
            let stem = URL(fileURLWithPath: mixture).deletingPathExtension().lastPathComponent
            let name = URL(fileURLWithPath: mixture).lastPathComponent
            let span = "\(fixed(start, 2))-\(fixed(start + seconds, 2)) s"
            let specFigure = SpectrogramFigure(panels: spectra, startSeconds: start, durationSeconds: seconds,
                                               title: "\(name), \(span): mixture and separated speakers", width: width)
            let channelsShown = result.maps[0].channels
            let attFigure = AttentionFigure(
                maps: result.maps, offsetSeconds: start,
                title: "\(name), \(span): hidden attention, \(path.rawValue) path, channels "
                    + "\(channelsShown.lowerBound)-\(channelsShown.upperBound) of \(m.config.innerWidth)")
            let specCanvas = try specFigure.render(), attCanvas = try attFigure.render()
            let folder = try OutputFolder(output)
            let specPath = (folder.path as NSString).appendingPathComponent("\(stem)_spectrograms.png")
            let attPath = (folder.path as NSString).appendingPathComponent("\(stem)_attention.png")
            do {
                for p in [specPath, attPath] { try protected.check(output: p) }
                let files = PendingFiles()
                try files.add(specPath) { try specCanvas.writePNGFile($0) }
                try files.add(attPath) { try attCanvas.writePNGFile($0) }
                try files.commit()
            } catch {
                folder.removeIfUnused()
                throw error
            }
            folder.forget()

            if json {
                let sp = spectra[0].spectrogram
                let report = Report(
                    input: mixture, model: m.name ?? "model", sampleRate: rate, startSeconds: start,
                    durationSeconds: seconds,
                    spectrograms: .init(path: specPath, width: specFigure.width, height: specFigure.height),
                    fftSize: sp.fftSize, hop: sp.hop,
                    attention: .init(path: attPath, width: attFigure.width, height: attFigure.height),
                    maps: result.maps.map {
                        .init(layer: $0.layer.description, block: $0.layer.block, path: $0.layer.path, chunk: $0.chunk,
                              shape: [$0.length, $0.length], channels: [$0.channels.lowerBound, $0.channels.upperBound],
                              startSeconds: start + $0.startSeconds, stepSeconds: $0.stepSeconds)
                    })
                print(try jsonText(report))
            } else {
                print(specPath)
                print(attPath)
            }
        }
    }
}

extension PathKind: ExpressibleByArgument {}
