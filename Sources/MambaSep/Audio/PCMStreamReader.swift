#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Reading interleaved PCM from a byte stream that cannot be seeked: a WAV header parsed from the
// stream (its data length unknown or wrong), or raw PCM of a known layout.
//
// Glossary: `F` frames (one sample of every channel), `Ch` channels.

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

    /// Reads up to `maxFrames` frames of the selected channel (or the channel mix).
    /// Returns an empty array only at end of stream; otherwise blocks until at least one frame.
    public func readMono(maxFrames: Int, channel: ChannelSelection = .mix) throws -> [Float] {
        mixdown(try readInterleaved(maxFrames: maxFrames), channels: format.channels, channel)
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
