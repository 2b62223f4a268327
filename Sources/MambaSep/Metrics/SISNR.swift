import Foundation

// MARK: - MetricsError

/// A problem with the signals given to a metric, in one printable line.
public struct MetricsError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Equatable {
        /// A signal has no samples.
        case empty
        /// Signals that must be the same length are not.
        case lengthMismatch
        /// Reference and estimate counts differ (PIT needs a square assignment).
        case countMismatch
        /// A reference is (numerically) silent, so SI-SNR against it is meaningless.
        case silentReference
        /// The mixture is (numerically) silent, so SI-SNRi against it is meaningless.
        case silentMixture
        /// Signals that must share a sample rate do not.
        case rateMismatch
        /// NaN or Inf in a signal.
        case nonFinite
    }

    public let kind: Kind
    /// The reason, naming the signal (a file path when the caller passed names).
    public let reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { reason }
}

// MARK: - SI-SNR

/// Scale-invariant signal-to-noise ratio and relatives, exactly as DESIGN.md defines them.
///
/// SI-SNR: remove each signal's mean; `s_t = <ŝ,s>/(‖s‖²+ε) · s`; `e = ŝ − s_t`;
/// `10·log10(‖s_t‖²/(‖e‖²+ε) + ε)` with ε = 1e-8 (SpeechBrain/Asteroid), accumulated in Double.
public enum Metrics {
    /// ε of DESIGN.md's formulas.
    public static let epsilon = 1e-8

    /// SI-SNR in dB of `estimate` against `target`.
    ///
    /// Throws `.empty` for empty signals and `.lengthMismatch` for different lengths. A silent
    /// target gives a finite but meaningless value (about −80 dB or less); callers that score
    /// user data should reject silent references with `checkReference(_:name:)` first.
    public static func siSNR(estimate: [Float], target: [Float]) throws -> Double {
        guard !estimate.isEmpty, !target.isEmpty else {
            throw MetricsError(.empty, "cannot score an empty signal")
        }
        guard estimate.count == target.count else {
            throw MetricsError(.lengthMismatch,
                               "estimate has \(estimate.count) samples but target has \(target.count)")
        }
        return estimate.withUnsafeBufferPointer { e in
            target.withUnsafeBufferPointer { t in siSNRUnchecked(e, t) }
        }
    }

    /// SI-SNR on equal-length, non-empty buffers (no checks).
    static func siSNRUnchecked(_ est: UnsafeBufferPointer<Float>, _ tgt: UnsafeBufferPointer<Float>) -> Double {
        let n = est.count
        var me = 0.0, mt = 0.0
        for i in 0..<n { me += Double(est[i]); mt += Double(tgt[i]) }
        me /= Double(n)
        mt /= Double(n)
        var dot = 0.0, tt = 0.0
        for i in 0..<n {
            let s = Double(tgt[i]) - mt
            dot += (Double(est[i]) - me) * s
            tt += s * s
        }
        let alpha = dot / (tt + epsilon)
        var stEnergy = 0.0, eEnergy = 0.0
        for i in 0..<n {
            let st = alpha * (Double(tgt[i]) - mt)
            let e = (Double(est[i]) - me) - st
            stEnergy += st * st
            eEnergy += e * e
        }
        return 10 * log10(stEnergy / (eEnergy + epsilon) + epsilon)
    }

    /// Plain SNR in dB, `10·log10(‖s‖² / ‖s − ŝ‖²)` (no mean removal, no scaling).
    ///
    /// Returns +∞ for a perfect estimate; throws like `siSNR`.
    public static func snr(estimate: [Float], target: [Float]) throws -> Double {
        guard !estimate.isEmpty, !target.isEmpty else { throw MetricsError(.empty, "cannot score an empty signal") }
        guard estimate.count == target.count else {
            throw MetricsError(.lengthMismatch, "estimate has \(estimate.count) samples but target has \(target.count)")
        }
        var s = 0.0, e = 0.0
        for i in target.indices {
            let t = Double(target[i])
            let d = t - Double(estimate[i])
            s += t * t
            e += d * d
        }
        return 10 * log10(s / e)
    }

    /// Mean-removed energy below which a reference counts as silent (equal to ε).
    public static let silenceEnergy = 1e-8

    /// Throws `.silentReference` if `signal` has (almost) no energy after mean removal, and
    /// `.nonFinite` if it holds NaN or Inf; `name` goes into the message.
    public static func checkReference(_ signal: [Float], name: String) throws {
        try checkSignal(signal, name: name, role: "reference", silent: .silentReference, undefined: "SI-SNR")
    }

    /// Throws `.silentMixture` if the mixture has (almost) no energy after mean removal (its
    /// SI-SNR against every reference would be about -90 dB, and every SI-SNRi about +90 dB), and
    /// `.nonFinite` if it holds NaN or Inf; `name` goes into the message.
    public static func checkMixture(_ signal: [Float], name: String) throws {
        try checkSignal(signal, name: name, role: "mixture", silent: .silentMixture, undefined: "SI-SNRi")
    }

    private static func checkSignal(_ signal: [Float], name: String, role: String,
                                    silent: MetricsError.Kind, undefined: String) throws {
        guard !signal.isEmpty else { throw MetricsError(.empty, "\(name): \(role) has no samples") }
        var mean = 0.0
        for v in signal {
            guard v.isFinite else { throw MetricsError(.nonFinite, "\(name): \(role) holds NaN or Inf samples") }
            mean += Double(v)
        }
        mean /= Double(signal.count)
        var energy = 0.0
        for v in signal { let d = Double(v) - mean; energy += d * d }
        if energy < silenceEnergy {
            throw MetricsError(silent, "\(name): \(role) is silent (no signal energy), \(undefined) is undefined")
        }
    }
}
