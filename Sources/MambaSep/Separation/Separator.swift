// One-window separation at the separator's sample rate.
//
// Glossary: `T` samples in a window, `C` speakers.

import Foundation

// MARK: - Protocol

/// Anything that splits one window of a mixture into `speakers` signals of the same length.
///
/// The windower talks to this protocol, so tests can substitute a fake separator.
public protocol WindowSeparator: AnyObject {
    /// Number of output signals per window.
    var speakers: Int { get }
    /// The sample rate windows must have (the model's rate), in Hz.
    var sampleRate: Int { get }
    /// Separates `window` (`T` samples) into `speakers` arrays of `T` samples. `T == 0` gives
    /// empty arrays.
    func separate(_ window: [Float]) -> [[Float]]
}

// MARK: - Model separator

/// Runs a `DPMamba` on one window, reusing its scratch buffers across calls. Not thread-safe
/// (one instance per thread; the model itself can be shared).
public final class Separator: WindowSeparator {
    public let model: DPMamba
    public let threads: Int
    private let scratch: DPMambaScratch

    /// `threads`: workers for the path layers (OpenBLAS is then kept to one thread per product,
    /// since the parallelism is across sequence groups).
    public init(model: DPMamba, threads: Int = 1) {
        self.model = model
        self.threads = max(1, threads)
        scratch = DPMambaScratch(workers: self.threads)
        BLAS.setThreads(1)
    }

    public var speakers: Int { model.config.numSpeakers }
    public var sampleRate: Int { model.config.sampleRate }

    public func separate(_ window: [Float]) -> [[Float]] { separate(window, recorder: nil) }

    /// `separate(_:)` with a recorder on the forward pass's selective scans.
    public func separate(_ window: [Float], recorder: ScanRecorder?) -> [[Float]] {
        let c = speakers, t = window.count
        guard t > 0 else { return [[Float]](repeating: [], count: c) }
        var outs = [[Float]](repeating: [Float](repeating: 0, count: t), count: c)
        // Hand the model raw pointers into the output arrays.
        let ptrs = (0..<c).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: t) }
        defer { ptrs.forEach { $0.deallocate() } }
        window.withUnsafeBufferPointer {
            model.forward($0.baseAddress!, samples: t, scratch: scratch, outputs: ptrs, recorder: recorder)
        }
        for i in 0..<c { outs[i].withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: ptrs[i], count: t) } }
        return outs
    }
}
