#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Audio as a byte stream: WAV read from a pipe (header first, data length unknown or wrong) or raw
// PCM, and the matching writer. Used by `mambasep stream`, where nothing can be seeked.

// MARK: - Formats

/// A PCM sample encoding for raw streams (little-endian).
public enum PCMSampleFormat: String, CaseIterable, Sendable {
    case s16le, s32le, f32le

    /// Bytes per sample.
    public var bytes: Int {
        switch self {
        case .s16le: return 2
        case .s32le, .f32le: return 4
        }
    }
}

/// The layout of an interleaved PCM stream.
public struct PCMStreamFormat: Equatable, Sendable {
    public var sampleRate: Int
    public var channels: Int
    public var encoding: PCMEncoding

    public init(sampleRate: Int, channels: Int, encoding: PCMEncoding) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.encoding = encoding
    }

    /// Bytes per frame (one sample of every channel).
    public var frameBytes: Int { channels * encoding.bytes }
}

/// Every sample encoding a WAV stream may carry, plus the raw formats.
public enum PCMEncoding: Equatable, Sendable {
    case u8, s16, s24, s32, f32, f64

    public init(_ raw: PCMSampleFormat) {
        switch raw {
        case .s16le: self = .s16
        case .s32le: self = .s32
        case .f32le: self = .f32
        }
    }

    /// Bytes per sample.
    public var bytes: Int {
        switch self {
        case .u8: return 1
        case .s16: return 2
        case .s24: return 3
        case .s32, .f32: return 4
        case .f64: return 8
        }
    }
}

/// Errors of the byte-stream reader and writer; each message names the stream and the problem.
public enum PCMStreamError: Error, CustomStringConvertible, Equatable {
    case invalidHeader(String)
    case unsupported(String)
    /// Reading the input failed.
    case io(String)
    /// Writing the output failed (other than `brokenPipe`).
    case output(String)
    /// The reader of our output went away (EPIPE).
    case brokenPipe

    public var description: String {
        switch self {
        case .invalidHeader(let s): return "invalid WAV header: \(s)"
        case .unsupported(let s): return "unsupported stream: \(s)"
        case .io(let s): return "I/O error: \(s)"
        case .output(let s): return "cannot write the output: \(s)"
        case .brokenPipe: return "output closed by reader"
        }
    }
}

// MARK: - Byte sources

/// Something bytes can be read from, a few at a time.
public protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 only at end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A file descriptor (stdin by default); retries on EINTR.
public final class FileDescriptorSource: ByteSource {
    public let fd: Int32
    public init(fd: Int32 = 0) { self.fd = fd }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            #if canImport(Glibc)
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            #else
            let n = Darwin.read(fd, buffer.baseAddress, buffer.count)
            #endif
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw PCMStreamError.io("read failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// In-memory bytes served in pieces of at most `chunk` bytes (tests: byte-at-a-time pipes).
public final class MemorySource: ByteSource {
    private let bytes: [UInt8]
    private var position = 0
    private let chunk: Int

    public init(_ bytes: [UInt8], chunk: Int = .max) {
        self.bytes = bytes
        self.chunk = max(1, chunk)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, chunk, bytes.count - position)
        if n <= 0 { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }
}

// MARK: - Reader

/// Reads interleaved PCM from a byte stream, as WAV (header parsed from the stream) or raw.
///
/// The WAV data length is trusted only as an upper bound: 0 and 0xFFFFFFFF (what streaming
/// writers put there) mean "until end of stream", and a stream that ends early is not an error.
/// A trailing partial frame at end of stream is dropped and counted in `partialFrameBytes`.
public final class PCMStreamReader {
    public private(set) var format: PCMStreamFormat
    /// Bytes of an incomplete frame found at end of stream (0 when the stream ended cleanly).
    public private(set) var partialFrameBytes = 0
    /// Whether the input carried a WAV header.
    public let isWAV: Bool

    private let source: ByteSource
    private var remaining: UInt64 = .max  // data bytes still allowed by the header
    private var pending: [UInt8] = []     // bytes of a frame split across reads
    private var finished = false
    private var scratch: [UInt8] = []

    /// Opens a WAV stream: reads and validates the header up to the start of the data.
    public init(wav source: ByteSource) throws {
        self.source = source
        self.isWAV = true
        self.format = PCMStreamFormat(sampleRate: 0, channels: 0, encoding: .s16)
        try readWAVHeader()
    }

    /// Opens a raw stream of a known format.
    public init(raw source: ByteSource, format: PCMStreamFormat) throws {
        guard format.sampleRate > 0 else { throw PCMStreamError.unsupported("sample rate must be positive") }
        guard format.channels > 0 else { throw PCMStreamError.unsupported("channel count must be positive") }
        self.source = source
        self.isWAV = false
        self.format = format
    }

    /// Reads up to `maxFrames` frames, downmixed to mono (or channel `channel` when given).
    /// Returns an empty array only at end of stream; otherwise blocks until at least one frame.
    public func readMono(maxFrames: Int, channel: Int? = nil) throws -> [Float] {
        let interleaved = try readInterleaved(maxFrames: maxFrames)
        let c = format.channels
        if c == 1 { return interleaved }
        let frames = interleaved.count / c
        var mono = [Float](repeating: 0, count: frames)
        if let k = channel {
            for f in 0..<frames { mono[f] = interleaved[f * c + k] }
        } else {
            let scale = 1 / Float(c)
            for f in 0..<frames {
                var s: Float = 0
                for k in 0..<c { s += interleaved[f * c + k] }
                mono[f] = s * scale
            }
        }
        return mono
    }

    /// Reads up to `maxFrames` interleaved frames as floats in [-1, 1]; empty only at end.
    public func readInterleaved(maxFrames: Int) throws -> [Float] {
        precondition(maxFrames > 0)
        if finished { return [] }
        let fb = format.frameBytes
        var wanted = UInt64(maxFrames * fb)
        wanted = min(wanted, remaining)
        if wanted == 0 { finish(); return [] }
        // Accumulate at least one whole frame (or hit EOF).
        let capacity = max(Int(wanted), pending.count)
        if scratch.count < capacity { scratch = [UInt8](repeating: 0, count: capacity) }
        var have = pending.count
        for (i, b) in pending.enumerated() { scratch[i] = b }
        pending.removeAll(keepingCapacity: true)
        while have < fb || (have % fb != 0 && have < Int(wanted)) {
            let n = try scratch.withUnsafeMutableBytes { buf in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[have..<max(have, Int(wanted))]))
            }
            if n == 0 {
                finished = true
                break
            }
            have += n
            if have >= fb && have % fb == 0 { break }
        }
        let whole = have / fb * fb
        if finished {
            partialFrameBytes = have - whole
        } else {
            pending.append(contentsOf: scratch[whole..<have])
        }
        remaining -= UInt64(whole)
        return decode(scratch, byteCount: whole)
    }

    private func finish() { finished = true }

    // MARK: Decoding

    private func decode(_ bytes: [UInt8], byteCount: Int) -> [Float] {
        let enc = format.encoding
        let n = byteCount / enc.bytes
        var out = [Float](repeating: 0, count: n)
        bytes.withUnsafeBytes { raw in
            for i in 0..<n {
                let o = i * enc.bytes
                switch enc {
                case .u8:
                    out[i] = (Float(raw[o]) - 128) / 128
                case .s16:
                    let v = Int16(bitPattern: UInt16(raw[o]) | UInt16(raw[o + 1]) << 8)
                    out[i] = Float(v) / 32768
                case .s24:
                    let u = UInt32(raw[o]) << 8 | UInt32(raw[o + 1]) << 16 | UInt32(raw[o + 2]) << 24
                    out[i] = Float(Int32(bitPattern: u) >> 8) / 8_388_608
                case .s32:
                    out[i] = Float(Double(Int32(bitPattern: raw.loadLE32(o))) / 2_147_483_648)
                case .f32:
                    out[i] = Float(bitPattern: raw.loadLE32(o))
                case .f64:
                    let lo = UInt64(raw.loadLE32(o)), hi = UInt64(raw.loadLE32(o + 4))
                    out[i] = Float(Double(bitPattern: lo | hi << 32))
                }
            }
        }
        return out
    }

    // MARK: WAV header

    /// Reads exactly `n` bytes or throws: a header cut short is an invalid header.
    private func readExactly(_ n: Int, what: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var have = 0
        while have < n {
            let got = try out.withUnsafeMutableBytes { buf in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[have..<n]))
            }
            if got == 0 {
                throw PCMStreamError.invalidHeader(
                    have == 0 && what == "RIFF header" ? "empty input" : "stream ended inside the \(what)")
            }
            have += got
        }
        return out
    }

    private func readWAVHeader() throws {
        let riff = try readExactly(12, what: "RIFF header")
        guard riff[0..<4] == [0x52, 0x49, 0x46, 0x46][...], riff[8..<12] == [0x57, 0x41, 0x56, 0x45][...] else {
            throw PCMStreamError.invalidHeader("expected 'RIFF....WAVE', got \(printable(riff))")
        }
        var fmt: PCMStreamFormat?
        while true {
            let head = try readExactly(8, what: "chunk header")
            let id = String(decoding: head[0..<4], as: UTF8.self)
            let size = head.withUnsafeBytes { $0.loadLE32(4) }
            if id == "data" {
                guard let f = fmt else { throw PCMStreamError.invalidHeader("'data' chunk before 'fmt ' chunk") }
                format = f
                remaining = (size == 0 || size == 0xFFFF_FFFF) ? .max : UInt64(size)
                return
            }
            // Chunks we must skip cannot be seeked over on a pipe; refuse absurd sizes.
            let padded = Int(size) + Int(size & 1)
            guard padded <= 1 << 24 else {
                throw PCMStreamError.invalidHeader("chunk '\(printable(Array(head[0..<4])))' of \(size) bytes before the data")
            }
            let body = try readExactly(padded, what: "'\(id)' chunk")
            if id == "fmt " { fmt = try parseFmt(body) }
        }
    }

    private func parseFmt(_ b: [UInt8]) throws -> PCMStreamFormat {
        guard b.count >= 16 else { throw PCMStreamError.invalidHeader("'fmt ' chunk too short (\(b.count) bytes)") }
        return try b.withUnsafeBytes { r in
            var tag = Int(r.loadLE16(0))
            let channels = Int(r.loadLE16(2))
            let rate = Int(r.loadLE32(4))
            let bits = Int(r.loadLE16(14))
            if tag == 0xFFFE {
                guard b.count >= 26 else { throw PCMStreamError.invalidHeader("extensible 'fmt ' chunk too short") }
                tag = Int(r.loadLE16(24))  // first two bytes of the sub-format GUID
            }
            guard channels > 0 else { throw PCMStreamError.invalidHeader("0 channels") }
            guard rate > 0 else { throw PCMStreamError.invalidHeader("sample rate 0") }
            let enc: PCMEncoding
            switch (tag, bits) {
            case (1, 8): enc = .u8
            case (1, 16): enc = .s16
            case (1, 24): enc = .s24
            case (1, 32): enc = .s32
            case (3, 32): enc = .f32
            case (3, 64): enc = .f64
            default:
                throw PCMStreamError.unsupported("WAV format tag \(tag) with \(bits) bits per sample (PCM 8/16/24/32 or float 32/64 only)")
            }
            return PCMStreamFormat(sampleRate: rate, channels: channels, encoding: enc)
        }
    }

    private func printable(_ bytes: [UInt8]) -> String {
        String(bytes.prefix(12).map { (32..<127).contains($0) ? Character(UnicodeScalar($0)) : "." })
    }
}

// MARK: - Writer

/// Writes interleaved PCM to a file descriptor (stdout by default), optionally behind a WAV header.
///
/// The WAV header announces an unknown length (0xFFFFFFFF) since the stream length is not known
/// when it is written. When the descriptor is a regular file (not opened for appending), the sizes
/// in the header are rewritten after every block, so the growing file is a valid WAV of what has
/// been written so far at any moment, and `finish()` leaves the exact sizes. A closed pipe surfaces
/// as `PCMStreamError.brokenPipe` (SIGPIPE must be ignored by the caller). A stream longer than
/// 4 GiB keeps 0xFFFFFFFF sizes (what streaming readers expect).
public final class PCMStreamWriter {
    public let format: PCMStreamFormat
    public let wavHeader: Bool
    private let fd: Int32
    /// Audio bytes written so far (excluding the header).
    public private(set) var dataBytes: UInt64 = 0
    private var headerWritten = false
    /// File offset of the header when the sizes can be patched in place, else nil.
    private var headerOffset: off_t? = nil
    private var buffer: [UInt8] = []

    public init(fd: Int32 = 1, sampleRate: Int, channels: Int, format: PCMSampleFormat, wavHeader: Bool) {
        self.fd = fd
        self.format = PCMStreamFormat(sampleRate: sampleRate, channels: channels, encoding: PCMEncoding(format))
        self.wavHeader = wavHeader
    }

    /// Writes frames given as one array per channel (all the same length). NaN is written as 0;
    /// integer formats clip to [-1, 1].
    public func write(channels: [[Float]]) throws {
        precondition(channels.count == format.channels, "channel count mismatch")
        let frames = channels.first?.count ?? 0
        precondition(channels.allSatisfy { $0.count == frames }, "channels of different lengths")
        try writeHeaderIfNeeded()
        if frames == 0 { return }
        let bps = format.encoding.bytes
        buffer.removeAll(keepingCapacity: true)
        buffer.reserveCapacity(frames * format.frameBytes)
        for f in 0..<frames {
            for c in 0..<format.channels {
                let x = channels[c][f]
                switch format.encoding {
                case .s16:
                    let v = x.isNaN ? 0 : Int16((max(-1, min(1, x)) * 32767).rounded())
                    appendLE(UInt32(UInt16(bitPattern: v)), bytes: bps)
                case .s32:
                    let d = x.isNaN ? 0 : Double(max(-1, min(1, x))) * 2_147_483_647
                    appendLE(UInt32(bitPattern: Int32(d.rounded())), bytes: bps)
                default:
                    appendLE((x.isNaN ? 0 : x).bitPattern, bytes: 4)
                }
            }
        }
        try writeAll(buffer)
        dataBytes += UInt64(buffer.count)
        try patchSizes()
    }

    /// Writes the header of an empty stream if nothing was written, and the final sizes where the
    /// descriptor allows it.
    public func finish() throws {
        try writeHeaderIfNeeded()
        try patchSizes()
    }

    private func writeHeaderIfNeeded() throws {
        guard wavHeader && !headerWritten else { return }
        // Patch sizes in place only on a regular file not opened with O_APPEND (pwrite would append).
        var st = stat()
        let pos = lseek(fd, 0, SEEK_CUR)
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, pos >= 0, fcntl(fd, F_GETFL) & O_APPEND == 0 {
            headerOffset = pos
        }
        try writeAll(header(dataSize: 0xFFFF_FFFF))
        headerWritten = true
    }

    /// Rewrites the RIFF and data sizes of a header in a regular file (no-op for pipes).
    private func patchSizes() throws {
        guard wavHeader, let at = headerOffset, dataBytes <= 0xFFFF_FFFF - 36 else { return }
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }
        for (offset, value) in [(off_t(4), UInt32(dataBytes) + 36), (off_t(40), UInt32(dataBytes))] {
            let bytes = le32(value)
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, 4, at + offset) }
            if n != 4 { throw PCMStreamError.output("cannot update the WAV header: \(String(cString: strerror(errno)))") }
        }
    }

    private func appendLE(_ v: UInt32, bytes: Int) {
        for i in 0..<bytes { buffer.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) }
    }

    private func header(dataSize: UInt32) -> [UInt8] {
        var h: [UInt8] = []
        func u32(_ v: UInt32) { for i in 0..<4 { h.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } }
        func u16(_ v: UInt16) { h.append(UInt8(v & 0xFF)); h.append(UInt8(v >> 8)) }
        let isFloat = format.encoding == .f32
        h += Array("RIFF".utf8); u32(dataSize == 0xFFFF_FFFF ? 0xFFFF_FFFF : dataSize + 36)
        h += Array("WAVE".utf8)
        h += Array("fmt ".utf8); u32(16)
        u16(isFloat ? 3 : 1); u16(UInt16(format.channels)); u32(UInt32(format.sampleRate))
        u32(UInt32(format.sampleRate * format.frameBytes)); u16(UInt16(format.frameBytes))
        u16(UInt16(format.encoding.bytes * 8))
        h += Array("data".utf8); u32(dataSize)
        return h
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                #if canImport(Glibc)
                Glibc.write(fd, raw.baseAddress! + off, bytes.count - off)
                #else
                Darwin.write(fd, raw.baseAddress! + off, bytes.count - off)
                #endif
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE { throw PCMStreamError.brokenPipe }
                throw PCMStreamError.output("write failed: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }
}

// MARK: - Little-endian loads

extension UnsafeRawBufferPointer {
    @inline(__always) func loadLE16(_ o: Int) -> UInt16 {
        UInt16(self[o]) | UInt16(self[o + 1]) << 8
    }
    @inline(__always) func loadLE32(_ o: Int) -> UInt32 {
        UInt32(self[o]) | UInt32(self[o + 1]) << 8 | UInt32(self[o + 2]) << 16 | UInt32(self[o + 3]) << 24
    }
}
