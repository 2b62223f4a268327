/// mambasep: speech separation with a Dual-path Mamba network.
///
/// The library's parts (see README.md and docs/MODEL.md):
/// - Audio: `AudioReader` (libsndfile block reader, mono mix or one channel), `Resampler`
///   (libsoxr, whole-buffer and streaming), `AudioWriter` / `writeAudio` (temporary file renamed
///   into place), `AudioFile` helpers, `AudioError`.
/// - Metrics: `Metrics.siSNR`, `Metrics.permutationInvariant` (SI-SNR/SI-SNRi with the best
///   speaker assignment), `Assignment` (permutations / Hungarian), `FileEvaluation`,
///   `EvalDataset` (LibriMix-style folders).
/// - Tensor, Layers, Model, Separation, DSP: the network and the separation engine.
public enum MambaSepInfo {
    /// The version `mambasep --version` prints.
    public static let version = "0.1.0"
}

import Foundation

/// A Foundation error in words: the operating system's message (`strerror`) when the error
/// wraps one, instead of "The operation could not be completed. (NSCocoaErrorDomain error 512.)".
public func plainReason(_ error: Error) -> String {
    let ns = error as NSError
    var e: NSError? = ns
    while let cur = e {
        if cur.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(cur.code))) }
        e = cur.userInfo[NSUnderlyingErrorKey] as? NSError
    }
    let known: [Int: String] = [
        NSFileNoSuchFileError: "no such file or folder", NSFileReadNoSuchFileError: "no such file or folder",
        NSFileReadNoPermissionError: "permission denied", NSFileWriteNoPermissionError: "permission denied",
        NSFileWriteOutOfSpaceError: "no space left on device", NSFileWriteVolumeReadOnlyError: "read-only file system",
        NSFileWriteFileExistsError: "a file is in the way",
    ]
    if ns.domain == NSCocoaErrorDomain, let words = known[ns.code] { return words }
    let text = ns.localizedDescription
    return text.contains("could not be completed") ? "\(ns.domain) error \(ns.code)" : text
}
