#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Where a byte stream comes from: a file descriptor (a pipe, standard input) or memory (tests).

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
