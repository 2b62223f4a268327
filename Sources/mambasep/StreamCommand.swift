import ArgumentParser
import Foundation
import MambaSep

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - stream

/// `mambasep stream`: separates audio arriving on stdin and writes it as it goes.
struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Separate audio arriving on standard input, with bounded latency (WAV or raw PCM in, interleaved speakers out).",
        discussion: """
        Input: a WAV stream (its header read from the pipe; a data length of 0, 0xFFFFFFFF or one \
        longer than the stream is fine), or raw little-endian PCM when --rate is given (with \
        --channels and --encoding). Any rate and channel count (mixed to mono, or --channel K).

        Output, written as it is separated: to stdout, interleaved with channel k = speaker k, at \
        the input's rate (a WAV header when the input was WAV, raw otherwise; --output-format to \
        choose); or with --output-dir one growing file per speaker (DIR/<stem>_s1.wav, ...; each \
        is a valid WAV at any moment).

        Latency: each window of --window seconds is separated as soon as it is complete and only \
        its block (--block s) is written, after --lookahead s of future context; the algorithmic \
        latency is block + look-ahead (--verbose prints it). Memory does not grow with the length \
        of the stream.

        Exit status: 0 at the end of input (a trailing partial frame is reported on stderr), 1 on \
        an error (e.g. an invalid header), 141 when the reader of stdout goes away (SIGPIPE).

          arecord -f S16_LE -r 16000 | mambasep stream > separated.wav
          sox talk.flac -t wav - | mambasep stream --output-dir live/
          ffmpeg -i in.mp4 -f s16le -ac 1 -ar 8000 - | mambasep stream --rate 8000 | ...
        """)

    @OptionGroup var engine: EngineOptions

    @OptionGroup(title: "Raw input (without --rate, stdin must be a WAV stream)")
    var raw: RawInputOptions

    @Option(help: "Separate this input channel (0-based) instead of the mix of all channels.")
    var channel: Int?

    @OptionGroup(title: "Output")
    var out: StreamOutputOptions

    @OptionGroup(title: "Windows")
    var windows: LiveWindowOptions

    @Flag(name: .shortAndLong, help: "Print the stream format and the latency at start, throughput at the end (stderr).")
    var verbose = false

    func validate() throws {
        if let c = channel, c < 0 { throw ValidationError("--channel counts from 0") }
    }

    func run() throws {
        // A reader that goes away must give EPIPE (handled below), not kill us with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        try reportingErrors {
            do {
                try stream()
            } catch PCMStreamError.brokenPipe {
                // Conventional status of a process killed by SIGPIPE (128 + 13), without a message.
                throw ExitCode(141)
            }
        }
    }

    private func stream() throws {
        if fcntl(STDIN_FILENO, F_GETFD) == -1 { throw CLIFailure("standard input is closed") }
        if out.dir == nil && fcntl(STDOUT_FILENO, F_GETFD) == -1 { throw CLIFailure("standard output is closed") }
        if isatty(STDIN_FILENO) != 0 {
            throw CLIFailure("standard input is a terminal: pipe audio into `mambasep stream` (WAV, or raw PCM with --rate)")
        }
        let m = try ModelStore.load(engine.model)
        let reader = try openInput()
        let inFormat = reader.format
        if let c = channel, c >= inFormat.channels {
            throw CLIFailure("<stdin>: channel \(c) requested but the stream has \(inFormat.channels) channel(s) (0-based)")
        }
        let stream = try SeparationStream(separator: Separator(model: m, threads: engine.threads),
                                          inputRate: inFormat.sampleRate, plan: windows.plan)
        let speakers = stream.speakers
        let wavOut = out.format.map { $0 == .wav } ?? reader.isWAV
        let encoding = out.encoding ?? Self.defaultEncoding(for: inFormat.encoding)

        let output: StreamingOutput
        var paths: [String] = []
        if let dir = out.dir {
            // Standard input may be redirected from one of the files about to be written.
            var protected = ProtectedFiles()
            protected.add(fd: STDIN_FILENO, name: "<stdin>")
            protected.add(path: try ModelStore.resolve(engine.model).path)
            let folder = try OutputFolder(dir)
            do {
                paths = (1...speakers).map { (folder.path as NSString).appendingPathComponent("\(out.stem)_s\($0).\(wavOut ? "wav" : "raw")") }
                for p in paths { try protected.check(output: p) }
                output = .perSpeaker(try paths.map {
                    try PCMStreamWriter(path: $0, sampleRate: inFormat.sampleRate, channels: 1, format: encoding, wavHeader: wavOut)
                })
            } catch {
                folder.removeIfUnused()
                throw error
            }
            folder.forget()
        } else {
            output = .interleaved(PCMStreamWriter(fd: STDOUT_FILENO, sampleRate: inFormat.sampleRate, channels: speakers,
                                                  format: encoding, wavHeader: wavOut))
        }

        if verbose {
            let w = stream.windower.sizes, mr = Double(m.config.sampleRate)
            let latency = try stream.measureLatency()
            let mixNote = inFormat.channels == 1 ? "" : (channel.map { ", channel \($0)" } ?? ", mixed to mono")
            printError("stream: model \(m.name ?? "?") (\(m.config.sampleRate) Hz, \(speakers) speakers, \(engine.threads) thread(s))")
            printError("stream: input \(reader.isWAV ? "WAV" : "raw") \(inFormat.sampleRate) Hz, \(inFormat.channels) ch, \(Self.name(inFormat.encoding))\(mixNote)")
            printError("stream: block \(fixed(Double(w.block) / mr, 3)) s, window \(fixed(Double(w.window) / mr, 3)) s (look-back \(fixed(Double(w.lookBack) / mr, 3)) s, look-ahead \(fixed(Double(w.lookAhead) / mr, 3)) s)")
            printError("stream: algorithmic latency \(fixed(latency, 3)) s (block + look-ahead \(fixed(Double(w.block + w.lookAhead) / mr, 3)) s, resampling \(fixed(stream.resamplingDelay(ofLatency: latency), 3)) s)")
            let dest = out.dir == nil ? "stdout, channel k = speaker k" : paths.joined(separator: ", ")
            printError("stream: output \(wavOut ? "WAV" : "raw") \(encoding.rawValue) at \(inFormat.sampleRate) Hz to \(dest)")
        }

        let report: StreamingReport
        do {
            report = try runStreamingSeparation(reader: reader, stream: stream, output: output,
                                                channel: channel.map { .channel($0) } ?? .mix)
        } catch PCMStreamError.output(let why) {
            throw CLIFailure("\(out.dir ?? "<stdout>"): cannot write the output: \(why)")
        } catch let e as PCMStreamError where e != .brokenPipe {
            throw CLIFailure("<stdin>: \(e)")
        } catch let e as SeparationError {
            throw CLIFailure("<stdin>: \(e)")
        }
        if report.partialFrameBytes > 0 {
            printError("warning: input ended inside a frame: \(report.partialFrameBytes) trailing byte(s) of an incomplete \(inFormat.frameBytes)-byte frame dropped (the samples before it were separated)")
        }
        if report.nonFiniteSamples > 0 {
            printError("warning: \(report.nonFiniteSamples) NaN/Inf input sample(s) replaced by 0")
        }
        if verbose {
            let secs = Double(report.framesIn) / Double(inFormat.sampleRate)
            let rtf = secs > 0 ? report.computeSeconds / secs : 0
            printError("stream: \(fixed(secs, 2)) s of audio in \(fixed(report.wallSeconds, 2)) s; computing \(fixed(report.computeSeconds, 2)) s (RTF \(fixed(rtf, 3))), \(report.windows) windows")
        }
        if out.dir != nil { for p in paths { print(p) } }
    }

    /// Opens stdin as raw PCM (with --rate) or as a WAV stream.
    private func openInput() throws -> PCMStreamReader {
        let source = FileDescriptorSource(fd: STDIN_FILENO)
        do {
            if let r = raw.rate {
                let format = PCMStreamFormat(sampleRate: r, channels: raw.channels, encoding: PCMEncoding(raw.encoding ?? .s16le))
                return try PCMStreamReader(raw: source, format: format)
            }
            return try PCMStreamReader(wav: source)
        } catch let e as PCMStreamError {
            var hint = ""
            if raw.rate == nil, case .invalidHeader = e { hint = " (for raw PCM give --rate and --encoding)" }
            throw CLIFailure("<stdin>: \(e)\(hint)")
        }
    }

    /// The output sample format that keeps the input's precision.
    static func defaultEncoding(for e: PCMEncoding) -> PCMSampleFormat {
        switch e {
        case .u8, .s16: return .s16le
        case .s24, .s32: return .s32le
        case .f32, .f64: return .f32le
        }
    }

    static func name(_ e: PCMEncoding) -> String {
        switch e {
        case .u8: return "u8"
        case .s16: return "s16le"
        case .s24: return "s24le"
        case .s32: return "s32le"
        case .f32: return "f32le"
        case .f64: return "f64le"
        }
    }
}

// MARK: - Option groups

extension PCMSampleFormat: ExpressibleByArgument {}

/// Layout of raw PCM on stdin.
struct RawInputOptions: ParsableArguments {
    @Option(help: "Sample rate in Hz.")
    var rate: Int?

    @Option(help: "Channels (interleaved).")
    var channels: Int = 1

    @Option(help: "Sample encoding (default: s16le).")
    var encoding: PCMSampleFormat?

    func validate() throws {
        if let r = rate, r <= 0 || r > 1_000_000 { throw ValidationError("--rate must be between 1 and 1000000 Hz") }
        if channels < 1 || channels > 64 { throw ValidationError("--channels must be between 1 and 64") }
        if rate == nil && (channels != 1 || encoding != nil) {
            throw ValidationError("--channels and --encoding describe raw input; give --rate too (a WAV stream carries its own)")
        }
    }
}

/// Where and how the separated speakers are written.
struct StreamOutputOptions: ParsableArguments {
    /// The container of the output.
    enum Container: String, ExpressibleByArgument, CaseIterable {
        case wav, raw
    }

    @Option(name: .customLong("output-format"), help: "Output container (default: wav when the input was WAV, raw otherwise).")
    var format: Container?

    @Option(name: .customLong("output-encoding"), help: "Output samples (default: like the input).")
    var encoding: PCMSampleFormat?

    @Option(name: .customLong("output-dir"), help: "Write one growing file per speaker into this folder instead of stdout.")
    var dir: String?

    @Option(help: "File name stem for --output-dir (<stem>_s1.wav, ...).")
    var stem: String = "stream"

    func validate() throws {
        if stem.isEmpty || stem.contains("/") { throw ValidationError("--stem must be a plain file name") }
    }
}

/// Block, window and look-ahead of `WindowPlan.live`.
struct LiveWindowOptions: ParsableArguments {
    @Option(help: "Block (new output per window) in seconds.")
    var block: Double = WindowPlan.standardLive.blockSeconds

    @Option(help: "Window (look-back + block + look-ahead) in seconds.")
    var window: Double = WindowPlan.standardLive.windowSeconds

    @Option(help: "Look-ahead (future context after each block) in seconds.")
    var lookahead: Double = WindowPlan.standardLive.lookAheadSeconds

    var plan: WindowPlan { .live(block: block, window: window, lookahead: lookahead) }

    func validate() throws {
        do { try plan.validate() } catch { throw ValidationError("\(error)") }
    }
}
