#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Writing interleaved PCM to a file descriptor or a growing file, optionally behind a WAV header.
//
// Glossary: `F` frames, `Ch` channels.

// MARK: - Writer

/// Writes interleaved PCM to a file descriptor (stdout by default), optionally behind a WAV header.
///
/// The WAV header announces an unknown length (0xFFFFFFFF) since the stream length is not known
/// when it is written. When the descriptor is a regular file (not opened for appending), the sizes
/// in the header are rewritten after every block, so the growing file is a valid WAV of what has
/// been written so far at any moment, and `finish()` leaves the exact sizes. A closed pipe surfaces
/// as `PCMStreamError.brokenPipe` (SIGPIPE must be ignored by the caller). A stream longer than
/// 4 GiB keeps 0xFFFFFFFF sizes (what streaming readers expect). When a write to a regular file
/// fails (a full disk, a file-size limit), the file is cut back to the last whole block, so it
/// stays valid.
public final class PCMStreamWriter {
    public let format: PCMStreamFormat
    public let wavHeader: Bool
    private let fd: Int32
    /// Whether the descriptor was opened here (`init(path:)`) and is closed on deinit.
    private let ownsDescriptor: Bool
    /// Audio bytes written so far (excluding the header).
    public private(set) var dataBytes: UInt64 = 0
    /// Samples written so far that lay beyond [-1, 1] and were clipped (integer formats only).
    public private(set) var clippedSamples = 0
    private var headerWritten = false
    /// Where this writer's bytes start in a regular file (for cutting back a failed block), else nil.
    private var fileStart: off_t? = nil
    /// Bytes of header written.
    private var headerBytes = 0
    /// File offset of the header when the sizes can be patched in place, else nil.
    private var headerOffset: off_t? = nil
    private var buffer: [UInt8] = []

    public init(fd: Int32 = 1, sampleRate: Int, channels: Int, format: PCMSampleFormat, wavHeader: Bool) {
        self.fd = fd
        self.format = PCMStreamFormat(sampleRate: sampleRate, channels: channels, encoding: PCMEncoding(format))
        self.wavHeader = wavHeader
        ownsDescriptor = false
    }

    /// Creates (or truncates) the file at `path` and writes to it; with `wavHeader` the file is a
    /// valid WAV of everything written so far at any moment. Throws `AudioError` (`.io`) naming
    /// the path when it cannot be created.
    public init(path: String, sampleRate: Int, channels: Int, format: PCMSampleFormat, wavHeader: Bool) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw AudioError(path: path, kind: .io, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.format = PCMStreamFormat(sampleRate: sampleRate, channels: channels, encoding: PCMEncoding(format))
        self.wavHeader = wavHeader
        ownsDescriptor = true
    }

    deinit { if ownsDescriptor { close(fd) } }

    /// Writes frames given as one array per channel (all the same length). NaN is written as 0;
    /// integer formats clip to [-1, 1] (`clipToFullScale`, counted in `clippedSamples`).
    public func write(channels: [[Float]]) throws {
        precondition(channels.count == format.channels, "channel count mismatch")
        let frames = channels.first?.count ?? 0
        precondition(channels.allSatisfy { $0.count == frames }, "channels of different lengths")
        try writeHeaderIfNeeded()
        if frames == 0 { return }
        let bps = format.encoding.bytes
        buffer.removeAll(keepingCapacity: true)
        buffer.reserveCapacity(frames * format.frameBytes)
        var planar = channels
        if format.encoding != .f32 {
            for c in planar.indices { clippedSamples += clipToFullScale(&planar[c]) }
        }
        for f in 0..<frames {
            for c in 0..<format.channels {
                let x = planar[c][f]
                switch format.encoding {
                case .s16:
                    let v = x.isNaN ? 0 : Int16((x * 32767).rounded())
                    appendLE(UInt32(UInt16(bitPattern: v)), bytes: bps)
                case .s32:
                    let d = x.isNaN ? 0 : Double(x) * 2_147_483_647
                    appendLE(UInt32(bitPattern: Int32(d.rounded())), bytes: bps)
                default:
                    appendLE((x.isNaN ? 0 : x).bitPattern, bytes: 4)
                }
            }
        }
        if fileStart == nil && !wavHeader { fileStart = regularFileOffset() }
        do {
            try writeAll(buffer)
        } catch {
            // A full disk or a size limit: cut the file back to the last whole block, so it stays a
            // valid stream (with a WAV header: a valid WAV) of everything written before.
            if let start = fileStart { _ = ftruncate(fd, start + off_t(headerBytes) + off_t(dataBytes)) }
            throw error
        }
        dataBytes += UInt64(buffer.count)
        try patchSizes()
    }

    /// The current offset when the descriptor is a regular file not opened for appending.
    private func regularFileOffset() -> off_t? {
        var st = stat()
        let pos = lseek(fd, 0, SEEK_CUR)
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, pos >= 0, fcntl(fd, F_GETFL) & O_APPEND == 0 else { return nil }
        return pos
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
        headerOffset = regularFileOffset()
        fileStart = headerOffset
        let h = header(dataSize: 0xFFFF_FFFF)
        do {
            try writeAll(h)
        } catch {
            if let start = fileStart { _ = ftruncate(fd, start) }
            throw error
        }
        headerBytes = h.count
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
