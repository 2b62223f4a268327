// A JSON-lines record of a batch: one object per input, appended as each input ends.

import Foundation

// MARK: - BatchRecord

/// What happened to one input of a batch.
public struct BatchRecord: Equatable, Sendable {
    public enum Status: String, Sendable {
        /// Separated by this run; every output was written.
        case ok
        /// Every output already existed, so the input was not read.
        case skipped
        /// Not separated (`error` says why); no output was written by this run.
        case failed
    }

    public var input: String
    /// The input's output paths (planned, whatever the status).
    public var outputs: [String]
    public var status: Status
    /// The one-line error when `status` is `.failed`.
    public var error: String?
    /// The input's length in seconds, when its header could be read.
    public var durationSeconds: Double?
    /// Wall-clock seconds spent on this input (reading its header, separating, writing).
    public var wallSeconds: Double
    /// Per output, the samples clipped at full scale (only for `.ok`).
    public var clippedSamples: [Int]?

    public init(input: String, outputs: [String], status: Status, error: String? = nil,
                durationSeconds: Double? = nil, wallSeconds: Double = 0, clippedSamples: [Int]? = nil) {
        self.input = input
        self.outputs = outputs
        self.status = status
        self.error = error
        self.durationSeconds = durationSeconds
        self.wallSeconds = wallSeconds
        self.clippedSamples = clippedSamples
    }

    /// Real-time factor: wall seconds per second of audio (below 1 is faster than real time);
    /// nil unless the input was separated.
    public var realTimeFactor: Double? {
        guard status == .ok, let d = durationSeconds, d > 0 else { return nil }
        return wallSeconds / d
    }

    /// The record as one line of JSON (no newline):
    /// `{"input", "outputs", "status", "error", "duration_s", "wall_s", "rtf", "clipped_samples"}`,
    /// with `null` for what is unknown or does not apply.
    public var jsonLine: String {
        let fields: [(String, String)] = [
            ("input", Self.json(input)),
            ("outputs", "[" + outputs.map(Self.json).joined(separator: ",") + "]"),
            ("status", Self.json(status.rawValue)),
            ("error", error.map(Self.json) ?? "null"),
            ("duration_s", Self.json(durationSeconds)),
            ("wall_s", Self.json(wallSeconds)),
            ("rtf", Self.json(realTimeFactor)),
            ("clipped_samples", clippedSamples.map { "[" + $0.map(String.init).joined(separator: ",") + "]" } ?? "null"),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// A JSON string literal (RFC 8259: quote, backslash and control characters escaped).
    static func json(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F || u.value == 0x2028 || u.value == 0x2029:
                out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// A JSON number rounded to microseconds' precision, or `null` (also for NaN and infinity).
    static func json(_ x: Double?) -> String {
        guard let x, x.isFinite else { return "null" }
        let r = (x * 1e6).rounded() / 1e6
        return "\(r == 0 ? 0 : r)"     // no "-0.0"
    }
}

// MARK: - BatchReport

/// A JSON-lines report file, opened for appending.
///
/// Each record goes out with its own `write(2)` as soon as it is appended (no buffering), so a
/// task that is killed, even with `kill -9`, leaves a report of complete lines for the inputs it
/// finished. A write that fails (a full disk) is cut back off, so the file never ends in half a
/// line; an existing report that does (an earlier writer's failure) gets a newline first, so new
/// records start on lines of their own.
public final class BatchReport {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        guard !path.isEmpty else { throw BatchError("the report file is an empty name") }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw BatchError("report \(path) is a folder; give a file such as \(path)/report.jsonl")
        }
        // Read access for the last byte (below); a report we may only write is appended to as it is.
        var fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 && errno == EACCES { fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644) }
        guard fd >= 0 else {
            throw BatchError("cannot open report \(path): \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.fd = fd
        // A last line without its newline: end it, so the next record is a line of its own.
        var st = stat()
        if fstat(fd, &st) == 0, st.st_size > 0 {
            var last: UInt8 = 0
            if pread(fd, &last, 1, st.st_size - 1) == 1, last != UInt8(ascii: "\n") {
                try appendBytes(Array("\n".utf8))
            }
        }
    }

    deinit { close(fd) }

    /// Appends `record` as one line.
    public func append(_ record: BatchRecord) throws {
        try appendBytes(Array((record.jsonLine + "\n").utf8))
    }

    private func appendBytes(_ bytes: [UInt8]) throws {
        var st = stat()
        let before: off_t? = fstat(fd, &st) == 0 ? st.st_size : nil
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let why = String(cString: strerror(n < 0 ? errno : EIO))
                if let before { _ = ftruncate(fd, before) }
                throw BatchError("cannot write report \(path): \(why)")
            }
            off += n
        }
    }
}
