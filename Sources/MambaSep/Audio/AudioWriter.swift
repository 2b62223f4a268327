import CSndFile
import Foundation

// MARK: - Output formats

/// A file format the writer produces.
public enum AudioFileFormat: String, CaseIterable, Sendable {
    /// WAV, 16-bit signed PCM (the default).
    case wav16
    /// WAV, 24-bit signed PCM.
    case wav24
    /// WAV, 32-bit IEEE float.
    case wavFloat
    /// FLAC, 16-bit.
    case flac
    /// Ogg Vorbis (lossy).
    case oggVorbis
    /// Ogg Opus (lossy; rates 8, 12, 16, 24 or 48 kHz only).
    case oggOpus

    /// The usual file extension, without the dot.
    public var fileExtension: String {
        switch self {
        case .wav16, .wav24, .wavFloat: return "wav"
        case .flac: return "flac"
        case .oggVorbis: return "ogg"
        case .oggOpus: return "opus"
        }
    }

    /// Whether samples are stored as integers (and so clipped to [-1, 1]).
    public var isPCM: Bool { self == .wav16 || self == .wav24 || self == .flac }

    /// The format a path's extension suggests (`.wav` → 16-bit WAV), or `nil` if unknown.
    public static func inferred(fromPath path: String) -> AudioFileFormat? {
        switch (path as NSString).pathExtension.lowercased() {
        case "wav", "wave": return .wav16
        case "flac": return .flac
        case "ogg", "oga": return .oggVorbis
        case "opus": return .oggOpus
        default: return nil
        }
    }

    var sndfileFormat: Int32 {
        switch self {
        case .wav16: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)
        case .wav24: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_24)
        case .wavFloat: return Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT)
        case .flac: return Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_16)
        case .oggVorbis: return Int32(SF_FORMAT_OGG | SF_FORMAT_VORBIS)
        case .oggOpus: return Int32(SF_FORMAT_OGG | SF_FORMAT_OPUS)
        }
    }
}

// MARK: - AudioWriter

/// A streaming writer that appends blocks to a temporary file beside the destination and renames
/// it into place on `finish()`.
///
/// Readers never see a half-written destination: until `finish()` the data lives in
/// `.<name>.<random>.tmp` in the same folder. `cancel()` (or dropping an unfinished writer)
/// deletes the temporary file. An existing destination is replaced atomically. PCM formats
/// clip samples to [-1, 1]; NaN or ±Inf samples are rejected with `.nonFinite` (nothing written
/// from that block). The destination folder must exist.
public final class AudioWriter {
    /// Final path of the file.
    public let path: String
    /// Path of the temporary file being written.
    public let temporaryPath: String
    public let sampleRate: Int
    public let channels: Int
    public let format: AudioFileFormat
    /// Frames written so far.
    public private(set) var framesWritten: Int = 0
    /// Samples written so far that lay beyond [-1, 1] and were clipped (integer formats only;
    /// always 0 for float WAV, Vorbis and Opus, which keep such samples).
    public private(set) var clippedSamples: Int = 0

    private var handle: OpaquePointer?
    private var done = false
    /// The temporary file's entry in `InterruptCleanup` (deleted if the process is interrupted).
    private var cleanupToken: InterruptCleanup.Token?

    /// Opens a temporary file in `path`'s folder for writing.
    public init(path: String, sampleRate: Int, channels: Int = 1, format: AudioFileFormat = .wav16) throws {
        self.path = path
        self.sampleRate = sampleRate
        self.channels = channels
        self.format = format
        guard sampleRate > 0 else {
            throw AudioError(path: path, kind: .invalidArgument, reason: "cannot write at sample rate \(sampleRate) Hz")
        }
        guard channels > 0 else {
            throw AudioError(path: path, kind: .invalidArgument, reason: "cannot write \(channels) channels")
        }
        if format == .oggOpus, ![8000, 12000, 16000, 24000, 48000].contains(sampleRate) {
            throw AudioError(path: path, kind: .unsupported,
                             reason: "Opus needs 8, 12, 16, 24 or 48 kHz, not \(sampleRate) Hz")
        }
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw AudioError(path: path, kind: .isDirectory, reason: "is a directory; cannot write audio there")
        }
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw AudioError(path: path, kind: .missing, reason: "destination folder \(dir) does not exist")
        }
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        self.temporaryPath = (dir as NSString).appendingPathComponent(".\(url.lastPathComponent).\(tag).tmp")
        var info = SF_INFO()
        info.samplerate = Int32(sampleRate)
        info.channels = Int32(channels)
        info.format = format.sndfileFormat
        guard sf_format_check(&info) != 0 else {
            throw AudioError(path: path, kind: .unsupported,
                             reason: "libsndfile cannot write \(format.rawValue) with \(channels) channel(s) at \(sampleRate) Hz")
        }
        cleanupToken = InterruptCleanup.add(file: temporaryPath)
        guard let h = sf_open(temporaryPath, Int32(SFM_WRITE), &info) else {
            InterruptCleanup.remove(cleanupToken)
            let msg = String(cString: sf_strerror(nil))
            throw AudioError(path: path, kind: .io, reason: "cannot create temporary file \(temporaryPath) (\(msg))")
        }
        handle = h
        if format.isPCM {
            _ = sf_command(h, Int32(SFC_SET_CLIPPING), nil, Int32(SF_TRUE))
        }
    }

    deinit {
        if !done { cancel() }
    }

    // MARK: Writing

    /// Appends interleaved frames (`[frame][channel]`); for mono this is just the samples.
    public func write(interleaved samples: [Float]) throws {
        guard let h = handle, !done else {
            throw AudioError(path: path, kind: .invalidArgument, reason: "writer is already finished or cancelled")
        }
        guard samples.count % channels == 0 else {
            throw AudioError(path: path, kind: .invalidArgument,
                             reason: "\(samples.count) samples are not a whole number of \(channels)-channel frames")
        }
        if let bad = samples.firstIndex(where: { !$0.isFinite }) {
            throw AudioError(path: path, kind: .nonFinite,
                             reason: "refusing to write a non-finite sample at frame \(framesWritten + bad / channels)")
        }
        let frames = samples.count / channels
        if frames == 0 { return }
        var data = samples
        let clipped = format.isPCM ? clipToFullScale(&data) : 0
        let written = data.withUnsafeBufferPointer { sf_writef_float(h, $0.baseAddress, sf_count_t(frames)) }
        guard Int(written) == frames else {
            let msg = String(cString: sf_strerror(h))
            throw AudioError(path: path, kind: .io, reason: "write failed after \(framesWritten + Int(written)) frames (\(msg))")
        }
        framesWritten += frames
        clippedSamples += clipped
    }

    /// Appends planar channels (one array per channel, all the same length).
    public func write(channels planar: [[Float]]) throws {
        guard planar.count == channels else {
            throw AudioError(path: path, kind: .invalidArgument,
                             reason: "got \(planar.count) channel arrays for a \(channels)-channel file")
        }
        let n = planar.first?.count ?? 0
        guard planar.allSatisfy({ $0.count == n }) else {
            throw AudioError(path: path, kind: .invalidArgument, reason: "channel arrays differ in length")
        }
        if channels == 1 { return try write(interleaved: planar[0]) }
        var inter = [Float](repeating: 0, count: n * channels)
        for (c, ch) in planar.enumerated() {
            for t in 0..<n { inter[t * channels + c] = ch[t] }
        }
        try write(interleaved: inter)
    }

    /// Closes the temporary file and renames it to `path`, replacing any existing file.
    ///
    /// On failure the temporary file is removed and the destination is left as it was.
    public func finish() throws {
        guard let h = handle, !done else {
            throw AudioError(path: path, kind: .invalidArgument, reason: "writer is already finished or cancelled")
        }
        done = true
        handle = nil
        defer { InterruptCleanup.remove(cleanupToken); cleanupToken = nil }
        let rc = sf_close(h)
        guard rc == 0 else {
            let msg = String(cString: sf_error_number(rc))
            try? FileManager.default.removeItem(atPath: temporaryPath)
            throw AudioError(path: path, kind: .io, reason: "closing the file failed (\(msg))")
        }
        if rename(temporaryPath, path) != 0 {
            let msg = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporaryPath)
            throw AudioError(path: path, kind: .io, reason: "cannot move the finished file into place (\(msg))")
        }
    }

    /// Abandons the file: closes and deletes the temporary file. Safe to call more than once.
    public func cancel() {
        if let h = handle { sf_close(h) }
        handle = nil
        if !done { unlink(temporaryPath) }
        done = true
        InterruptCleanup.remove(cleanupToken)
        cleanupToken = nil
    }
}

// MARK: - One-call writing

/// Writes mono samples to `path` (through a temporary file and a rename).
///
/// `format` defaults to the path's extension (`.flac`, `.ogg`, `.opus`), else 16-bit WAV.
public func writeAudio(_ samples: [Float], to path: String, sampleRate: Int,
                       format: AudioFileFormat? = nil) throws {
    try writeAudio(channels: [samples], to: path, sampleRate: sampleRate, format: format)
}

/// Writes planar multi-channel audio to `path` as one interleaved file.
public func writeAudio(channels planar: [[Float]], to path: String, sampleRate: Int,
                       format: AudioFileFormat? = nil) throws {
    let fmt = format ?? AudioFileFormat.inferred(fromPath: path) ?? .wav16
    let w = try AudioWriter(path: path, sampleRate: sampleRate, channels: max(planar.count, 1), format: fmt)
    do {
        try w.write(channels: planar)
        try w.finish()
    } catch {
        w.cancel()
        throw error
    }
}
