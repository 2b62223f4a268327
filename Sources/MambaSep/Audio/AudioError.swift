import Foundation

// MARK: - AudioError

/// An audio input or output problem, naming the file and what is wrong with it.
///
/// `description` is one line, `"<path>: <reason>"`, ready to print on stderr.
public struct AudioError: Error, CustomStringConvertible, Equatable {
    /// What went wrong, in a form tests and callers can switch on.
    public enum Kind: Equatable {
        /// The path does not exist.
        case missing
        /// The path is a directory, not a file.
        case isDirectory
        /// The file has zero bytes.
        case emptyFile
        /// libsndfile does not recognise the bytes as audio (its message in `detail`).
        case notAudio
        /// The header is valid but there are no sample frames.
        case noSamples
        /// The file ends before the length its header declares.
        case truncated
        /// A sample is NaN or ±Inf (frame index in `detail`).
        case nonFinite
        /// A format, channel, rate or option this library does not handle.
        case unsupported
        /// The operating system or libsndfile failed to read, write or rename.
        case io
        /// The caller passed an invalid argument (bad rate, channel out of range, ...).
        case invalidArgument
    }

    /// The file concerned (or what stands for it, such as `"<resampler>"`).
    public let path: String
    /// The category of the problem.
    public let kind: Kind
    /// A human-readable reason, without the path.
    public let reason: String

    public init(path: String, kind: Kind, reason: String) {
        self.path = path
        self.kind = kind
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

extension AudioError: LocalizedError {
    public var errorDescription: String? { description }
}
