import CSndFile
import Foundation

// MARK: - AudioInfo

/// What a file's header says: rate, channels, length and format names.
public struct AudioInfo: Equatable, Sendable {
    public let path: String
    public let sampleRate: Int
    public let channels: Int
    /// Frames (samples per channel) the header declares.
    public let frameCount: Int
    /// The container, e.g. `"WAV"`, `"FLAC"`, `"OGG"`.
    public let container: String
    /// The sample encoding, e.g. `"PCM_16"`, `"FLOAT"`, `"VORBIS"`, `"OPUS"`.
    public let encoding: String

    /// Length in seconds.
    public var duration: Double { Double(frameCount) / Double(sampleRate) }
}

// MARK: - AudioReader

/// A block reader over any file libsndfile decodes, returning mono (or one channel) floats.
///
/// Samples are normalised floats (integer PCM maps to [-1, 1)). The reader holds one block at a
/// time, so files of any length read in bounded memory. Errors are `AudioError`s naming the path:
/// missing file, directory, empty file, bytes that are not audio, a header without frames, a
/// file shorter than its header (detected at open for WAV-like files, at the end of reading for
/// others), and NaN/Inf samples (reported at the block that holds them).
public final class AudioReader {
    /// The path given at open.
    public let path: String
    /// Samples per second per channel.
    public let sampleRate: Int
    /// Channels in the file (the reader returns one mixed or picked channel).
    public let channelCount: Int
    /// Frames the header declares.
    public let frameCount: Int
    /// Which channel `read(maxFrames:)` returns.
    public let channel: ChannelSelection
    /// Header facts.
    public let info: AudioInfo
    /// Frames delivered so far.
    public private(set) var framesRead: Int = 0

    private var handle: OpaquePointer?
    private var finished = false
    private var scratch: [Float] = []

    // MARK: Opening

    /// Opens a file for block reading.
    ///
    /// Standard input is not read here: libsndfile needs a seekable file or a complete header,
    /// while a pipe may carry a WAV header with an unknown length or cut mid-frame. Pipes are
    /// `PCMStreamReader`'s job; the path `"-"` is an `.invalidArgument` error saying so.
    public init(path: String, channel: ChannelSelection = .mix) throws {
        if path == "-" {
            throw AudioError(path: path, kind: .invalidArgument,
                             reason: "standard input is not a file; read pipes with PCMStreamReader")
        }
        try AudioReader.checkRegularFile(path)
        var sfinfo = SF_INFO()
        guard let h = sf_open(path, Int32(SFM_READ), &sfinfo) else {
            let msg = String(cString: sf_strerror(nil))
            throw AudioError(path: path, kind: .notAudio,
                             reason: "not a readable audio file (libsndfile: \(msg))")
        }
        self.path = path
        self.handle = h
        self.sampleRate = Int(sfinfo.samplerate)
        self.channelCount = Int(sfinfo.channels)
        self.channel = channel
        self.frameCount = Int(sfinfo.frames)
        self.info = AudioInfo(path: path, sampleRate: Int(sfinfo.samplerate), channels: Int(sfinfo.channels),
                              frameCount: Int(sfinfo.frames), container: AudioReader.containerName(sfinfo.format),
                              encoding: AudioReader.encodingName(sfinfo.format))
        // From here on, failures must close the handle.
        do {
            guard sampleRate > 0 else {
                throw AudioError(path: path, kind: .unsupported, reason: "sample rate \(sampleRate) Hz is invalid")
            }
            guard channelCount > 0 else {
                throw AudioError(path: path, kind: .unsupported, reason: "file declares \(channelCount) channels")
            }
            if case .channel(let k) = channel, !(0..<channelCount).contains(k) {
                throw AudioError(path: path, kind: .invalidArgument,
                                 reason: "channel \(k) requested but the file has \(channelCount) channel(s) (0-based)")
            }
            if frameCount <= 0 {
                throw AudioError(path: path, kind: .noSamples, reason: "file holds no audio samples (empty)")
            }
            if let (claimed, actual) = AudioReader.truncationFromLog(h) {
                throw AudioError(path: path, kind: .truncated,
                                 reason: "truncated: header declares \(claimed) bytes of audio data but only \(actual) are present")
            }
            _ = sf_command(h, Int32(SFC_SET_NORM_FLOAT), nil, Int32(SF_TRUE))
        } catch {
            sf_close(h)
            self.handle = nil
            throw error
        }
    }

    deinit { close() }

    /// Closes the file; later reads return empty blocks. Safe to call twice.
    public func close() {
        if let h = handle { sf_close(h) }
        handle = nil
    }

    // MARK: Reading

    /// Reads up to `maxFrames` frames of the selected channel (or the channel mix).
    ///
    /// Returns an empty array at the end of the file. Throws `.truncated` if the data ends before
    /// the header's frame count, `.nonFinite` on NaN/Inf samples, `.invalidArgument` if
    /// `maxFrames < 1`.
    public func read(maxFrames: Int) throws -> [Float] {
        mixdown(try readInterleaved(maxFrames: maxFrames), channels: channelCount, channel)
    }

    /// Reads up to `maxFrames` frames of all channels, interleaved (`[frame][channel]`).
    ///
    /// Same end-of-file and error behaviour as `read(maxFrames:)`; ignores `channel`.
    public func readInterleaved(maxFrames: Int) throws -> [Float] {
        guard maxFrames > 0 else {
            throw AudioError(path: path, kind: .invalidArgument, reason: "block size must be at least 1 frame")
        }
        guard let h = handle, !finished else { return [] }
        let c = channelCount
        let want = min(maxFrames, max(frameCount - framesRead, 0))
        if want == 0 {
            // Header count reached: the file is complete.
            finished = true
            return []
        }
        if scratch.count < want * c { scratch = [Float](repeating: 0, count: want * c) }
        let got = scratch.withUnsafeMutableBufferPointer { buf -> Int in
            Int(sf_readf_float(h, buf.baseAddress, sf_count_t(want)))
        }
        if got < want {
            finished = true
            if framesRead + got < frameCount {
                let err = String(cString: sf_strerror(h))
                let note = sf_error(h) != 0 ? " (libsndfile: \(err))" : ""
                throw AudioError(path: path, kind: .truncated,
                                 reason: "truncated: header declares \(frameCount) frames but only \(framesRead + got) could be decoded\(note)")
            }
        }
        var block = Array(scratch[0..<(got * c)])
        do {
            try NonFiniteInput.reject.apply(to: &block)
        } catch let bad as NonFiniteSample {
            let frame = framesRead + bad.index / c
            throw AudioError(path: path, kind: .nonFinite,
                             reason: "sample \(bad.value) (not finite) at frame \(frame) (t = \(String(format: "%.3f", Double(frame) / Double(sampleRate))) s)")
        }
        framesRead += got
        return block
    }

    /// Reads everything that is left, as one array of the selected channel.
    public func readAll(blockFrames: Int = 65536) throws -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(max(frameCount - framesRead, 0))
        while true {
            let b = try read(maxFrames: blockFrames)
            if b.isEmpty { break }
            out.append(contentsOf: b)
        }
        return out
    }

    // MARK: Helpers

    static func checkRegularFile(_ path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw AudioError(path: path, kind: .missing, reason: "no such file")
        }
        if isDir.boolValue {
            throw AudioError(path: path, kind: .isDirectory, reason: "is a directory, not an audio file")
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw AudioError(path: path, kind: .io, reason: "file is not readable (permission denied)")
        }
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = attrs?[.size] as? NSNumber, size.intValue == 0 {
            throw AudioError(path: path, kind: .emptyFile, reason: "file is empty (0 bytes)")
        }
    }

    /// Reads libsndfile's parse log for a data chunk longer than the file (silently clamped by
    /// libsndfile), returning (declared, present) bytes. Streaming sizes (0, 0xFFFFFFFF) are not
    /// truncation.
    static func truncationFromLog(_ h: OpaquePointer) -> (Int, Int)? {
        var buf = [CChar](repeating: 0, count: 8192)
        _ = buf.withUnsafeMutableBytes { raw in
            sf_command(h, Int32(SFC_GET_LOG_INFO), raw.baseAddress, Int32(raw.count))
        }
        let log = String(cString: buf)
        for line in log.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("data ") || trimmed.hasPrefix("SSND ") || trimmed.hasPrefix("data:"),
                  let range = trimmed.range(of: "(should be ") else { continue }
            let head = trimmed[..<range.lowerBound]
            let claimedText = head.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? ""
            let actualText = trimmed[range.upperBound...].prefix { $0.isNumber }
            guard let claimed = Int(claimedText), let actual = Int(actualText) else { continue }
            if claimed == 0 || claimed >= 0xFFFF_FFFF || claimed == 0x7FFF_FFFF { continue }
            if claimed > actual { return (claimed, actual) }
        }
        return nil
    }

    static func containerName(_ format: Int32) -> String {
        let major = UInt32(format) & UInt32(SF_FORMAT_TYPEMASK)
        let names: [UInt32: String] = [
            UInt32(SF_FORMAT_WAV): "WAV", UInt32(SF_FORMAT_AIFF): "AIFF",
            UInt32(SF_FORMAT_AU): "AU", UInt32(SF_FORMAT_RAW): "RAW",
            UInt32(SF_FORMAT_W64): "W64", UInt32(SF_FORMAT_WAVEX): "WAVEX",
            UInt32(SF_FORMAT_FLAC): "FLAC", UInt32(SF_FORMAT_CAF): "CAF",
            UInt32(SF_FORMAT_OGG): "OGG", UInt32(SF_FORMAT_RF64): "RF64",
            UInt32(SF_FORMAT_MPEG): "MPEG", UInt32(SF_FORMAT_NIST): "NIST",
        ]
        return names[major] ?? String(format: "0x%06X", major)
    }

    static func encodingName(_ format: Int32) -> String {
        let sub = UInt32(format) & UInt32(SF_FORMAT_SUBMASK)
        let names: [UInt32: String] = [
            UInt32(SF_FORMAT_PCM_S8): "PCM_S8", UInt32(SF_FORMAT_PCM_U8): "PCM_U8",
            UInt32(SF_FORMAT_PCM_16): "PCM_16", UInt32(SF_FORMAT_PCM_24): "PCM_24",
            UInt32(SF_FORMAT_PCM_32): "PCM_32", UInt32(SF_FORMAT_FLOAT): "FLOAT",
            UInt32(SF_FORMAT_DOUBLE): "DOUBLE", UInt32(SF_FORMAT_ULAW): "ULAW",
            UInt32(SF_FORMAT_ALAW): "ALAW", UInt32(SF_FORMAT_VORBIS): "VORBIS",
            UInt32(SF_FORMAT_OPUS): "OPUS", UInt32(SF_FORMAT_MPEG_LAYER_III): "MP3",
            UInt32(SF_FORMAT_IMA_ADPCM): "IMA_ADPCM", UInt32(SF_FORMAT_MS_ADPCM): "MS_ADPCM",
            UInt32(SF_FORMAT_GSM610): "GSM610", UInt32(SF_FORMAT_ALAC_16): "ALAC_16",
        ]
        return names[sub] ?? String(format: "0x%04X", sub)
    }
}
