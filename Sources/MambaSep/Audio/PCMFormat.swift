// Interleaved PCM as a byte stream: sample encodings, stream layouts and the errors of the
// byte-stream reader and writer (`PCMStreamReader`, `PCMStreamWriter`), used by `mambasep stream`.

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

// MARK: - Little-endian loads

extension UnsafeRawBufferPointer {
    @inline(__always) func loadLE16(_ o: Int) -> UInt16 {
        UInt16(self[o]) | UInt16(self[o + 1]) << 8
    }
    @inline(__always) func loadLE32(_ o: Int) -> UInt32 {
        UInt32(self[o]) | UInt32(self[o + 1]) << 8 | UInt32(self[o + 2]) << 16 | UInt32(self[o + 3]) << 24
    }
}
