// Bidirectional S4D mixer: diagonal state space kernels (ZOH, B = 1) applied as long
// convolutions through FFTW, forward kernel causal, backward kernel anti-causal.
//
// Glossary (docs/MODEL.md): `G` sequences in a group, `L'` their length, `Rw = G·L'` rows, `N`
// model width (= S4D channels), `P` complex state pairs (s4d_state/2), `F` FFT size,
// `Fh = F/2 + 1` bins.
//
// Both directions share one FFT pair: y_fwd + y_bwd = IFFT(X · (K̂_f + conj(K̂_b))) because the
// backward direction (flip, causal conv, flip) is the correlation y[t] = Σ_l K_b[l]·x[t + l].

import Foundation

// MARK: - Weights

/// One direction's S4D parameters.
public struct S4DDirectionWeights: Sendable {
    public let logDt: Tensor           // log_dt / log_dt_b                [N]
    public let logAReal: Tensor        // log_A_real / log_A_real_b        [N, P]
    public let aImag: Tensor           // A_imag / A_imag_b                [N, P]
    public let c: Tensor               // C / C_b                          [N, P, 2] (re, im)
    public let d: Tensor               // D / D_b                          [N]
}

/// Parameters of a BiS4D mixer (state-dict prefix `….mixer.`), and the convolution kernels
/// derived from them (built once per sequence length, on first use).
public struct BiS4DWeights: Sendable {
    public let forward: S4DDirectionWeights
    public let backward: S4DDirectionWeights
    public let outProj: Tensor         // out_proj.weight                  [2N, N]
    public let outBias: Tensor         // out_proj.bias                    [2N]
    /// Both directions' kernel spectra by sequence length.
    public let kernels = S4DKernelCache()

    public init(_ r: WeightReader, prefix: String, config: ModelConfig) throws {
        let n = config.nFilters, p = config.s4dPairs
        func direction(_ sfx: String) throws -> S4DDirectionWeights {
            S4DDirectionWeights(
                logDt: try r.take(prefix + "log_dt" + sfx, [n]),
                logAReal: try r.take(prefix + "log_A_real" + sfx, [n, p]),
                aImag: try r.take(prefix + "A_imag" + sfx, [n, p]),
                c: try r.take(prefix + "C" + sfx, [n, p, 2]),
                d: try r.take(prefix + "D" + sfx, [n]))
        }
        forward = try direction("")
        backward = try direction("_b")
        outProj = try r.take(prefix + "out_proj.weight", [2 * n, n])
        outBias = try r.take(prefix + "out_proj.bias", [2 * n])
    }
}

// MARK: - Kernels

extension S4DDirectionWeights {
    /// Discretised coefficients per (n, p): `w = exp(Δ·A)` and `Kc = C·(w − 1)/A`, in Double.
    func coefficients(channels n: Int, pairs p: Int) -> (wRe: [Double], wIm: [Double], kRe: [Double], kIm: [Double]) {
        var wRe = [Double](repeating: 0, count: n * p), wIm = wRe, kRe = wRe, kIm = wRe
        for c in 0..<n {
            let dt = Foundation.exp(Double(logDt.pointer[c]))
            for j in 0..<p {
                let i = c * p + j
                let ar = -Foundation.exp(Double(logAReal.pointer[i])), ai = Double(aImag.pointer[i])
                let (zr, zi) = (dt * ar, dt * ai)                          // Δ·A
                let mag = Foundation.exp(zr)
                let (er, ei) = (mag * Foundation.cos(zi), mag * Foundation.sin(zi)) // exp(Δ·A)
                let (nr, ni) = (er - 1, ei)                                // exp(ΔA) − 1
                let den = ar * ar + ai * ai
                let (qr, qi) = ((nr * ar + ni * ai) / den, (ni * ar - nr * ai) / den) // (exp(ΔA) − 1)/A
                let cr = Double(c_(i, 0)), ci = Double(c_(i, 1))
                wRe[i] = er; wIm[i] = ei
                kRe[i] = cr * qr - ci * qi; kIm[i] = cr * qi + ci * qr
            }
        }
        return (wRe, wIm, kRe, kIm)
    }

    private func c_(_ i: Int, _ part: Int) -> Float { c.pointer[2 * i + part] }

    /// The real convolution kernel `K[n, l] = 2·Re(Σ_p Kc·w^l)`, `[N, L']` channel-major.
    public func kernel(channels n: Int, pairs p: Int, length t: Int) -> [Float] {
        let (wRe, wIm, kRe, kIm) = coefficients(channels: n, pairs: p)
        var out = [Float](repeating: 0, count: n * t)
        for c in 0..<n {
            var acc = [Double](repeating: 0, count: t)
            for j in 0..<p {
                let i = c * p + j
                var (zr, zi) = (kRe[i], kIm[i])                         // Kc·w^l, l = 0
                for l in 0..<t {
                    acc[l] += zr
                    (zr, zi) = (zr * wRe[i] - zi * wIm[i], zr * wIm[i] + zi * wRe[i])
                }
            }
            for l in 0..<t { out[c * t + l] = Float(2 * acc[l]) }
        }
        return out
    }
}

/// Combined spectrum of both directions for one sequence length, and the summed skip D_f + D_b.
final class S4DSpectrum: @unchecked Sendable {
    let size: Int
    let spectrum: UnsafeMutablePointer<Float>       // [Fh, N, 2]
    let dSum: Tensor                                // [N]
    init(size: Int, values: [Float], dSum: Tensor) {
        self.size = size
        let buf = alignedFloatAlloc(values.count)
        values.withUnsafeBufferPointer { buf.update(from: $0.baseAddress!, count: values.count) }
        spectrum = buf
        self.dSum = dSum
    }
    deinit { free(spectrum) }
}

// MARK: - Kernel cache

/// The combined spectra of a BiS4D layer by sequence length, built on first use under a lock (the
/// path layers run on several threads). Derived from the weights, never changed once built.
public final class S4DKernelCache: @unchecked Sendable {
    private let lock = NSLock()
    private var spectra: [Int: S4DSpectrum] = [:]

    public init() {}

    /// The spectrum for sequences of length `t`, built by `make` if it is not cached yet.
    func spectrum(length t: Int, make: () -> S4DSpectrum) -> S4DSpectrum {
        lock.lock()
        defer { lock.unlock() }
        if let s = spectra[t] { return s }
        let s = make()
        spectra[t] = s
        return s
    }

    /// Number of sequence lengths with a cached kernel (tests).
    public var count: Int { lock.lock(); defer { lock.unlock() }; return spectra.count }
}

extension BiS4DWeights {
    /// The combined spectrum of both directions for sequences of length `t`, and D_f + D_b.
    func spectrum(length t: Int, config: ModelConfig) -> S4DSpectrum {
        kernels.spectrum(length: t) {
            let n = config.nFilters, p = config.s4dPairs
            let size = fftSize(forLength: t)
            let kf = forward.kernel(channels: n, pairs: p, length: t)                  // [N, L']
            let kb = backward.kernel(channels: n, pairs: p, length: t)                 // [N, L']
            var spec = kernelSpectrum(kf, channels: n, length: t, size: size, conjugate: false)   // [Fh, N, 2]
            let specB = kernelSpectrum(kb, channels: n, length: t, size: size, conjugate: true)
            for i in 0..<spec.count { spec[i] += specB[i] }
            let dSum = Tensor(zeros: [n])                                                // [N]
            for c in 0..<n { dSum.pointer[c] = forward.d.pointer[c] + backward.d.pointer[c] }
            return S4DSpectrum(size: size, values: spec, dSum: dSum)
        }
    }
}

// MARK: - Scratch

/// Per-thread buffers for `BiS4DWeights.forward`, one quantity each.
public final class S4DScratch {
    let fft = FFTScratch()             // the FFT filter's own buffers
    let y = ScratchBuffer()            // [Rw, N] y_fwd + y_bwd + (D_f + D_b)·h, then GELU
    let proj = ScratchBuffer()         // [Rw, 2N] out_proj output, GLU halves
    public init() {}
}

// MARK: - Forward

extension BiS4DWeights {
    /// Mixes `G` sequences of length `L'` held as `h [G·L', N]` into `out [G·L', N]`:
    /// `out = GLU(out_proj(GELU(y_fwd + y_bwd)))`. `h` and `out` must not overlap.
    @_optimize(speed)
    public func forward(_ h: UnsafePointer<Float>, sequences g: Int, length t: Int, config: ModelConfig,
                        scratch: S4DScratch, into out: UnsafeMutablePointer<Float>) {
        let rows = g * t, n = config.nFilters
        guard rows > 0 else { return }
        let spec = spectrum(length: t, config: config)
        let y = scratch.y.reserve(rows * n)                 // [Rw, N]
        let proj = scratch.proj.reserve(rows * 2 * n)       // [Rw, 2N]
        for s in 0..<g {
            fftFilter(h + s * t * n, length: t, channels: n, spectrum: spec.spectrum, size: spec.size,
                      scratch: scratch.fft, into: y + s * t * n, ldy: n)
        }
        // y += (D_f + D_b)·h, then GELU.
        let d = spec.dSum.pointer
        for r in 0..<rows {
            let yr = y + r * n, hr = h + r * n
            for c in 0..<n { yr[c] += d[c] * hr[c] }
        }
        geluInPlace(y, count: rows * n)
        linear(y, ldx: n, rows: rows, weight: outProj, bias: outBias,
               inFeatures: n, outFeatures: 2 * n, into: proj, ldy: 2 * n)
        // GLU over the feature axis: first half · sigmoid(second half).
        for r in 0..<rows {
            let pr = proj + r * 2 * n, or = out + r * n
            var c = 0
            while c + 8 <= n { or.setVec8(c, pr.vec8(c) * fastSigmoid(pr.vec8(n + c))); c += 8 }
            while c < n { or[c] = pr[c] * scalar(fastSigmoid, pr[n + c]); c += 1 }
        }
    }
}

// MARK: - Reference

/// Recurrent-form reference of one S4D direction on one channels-last sequence `h [L', N]`:
/// per (n, p) `s = exp(ΔA)·s + h[t]`, `y[t] = 2·Re(Σ_p Kc·s) + D·h[t]` (Double arithmetic).
/// `reverse` runs the recurrence backwards in time (the flipped direction).
public func s4dRecurrenceReference(_ dir: S4DDirectionWeights, h: [Float], length t: Int, channels n: Int,
                                   pairs p: Int, reverse: Bool) -> [Float] {
    let (wRe, wIm, kRe, kIm) = dir.coefficients(channels: n, pairs: p)
    var y = [Float](repeating: 0, count: t * n)
    for c in 0..<n {
        var sr = [Double](repeating: 0, count: p), si = sr
        for step in 0..<t {
            let ts = reverse ? t - 1 - step : step
            let x = Double(h[ts * n + c])
            var acc: Double = 0
            for j in 0..<p {
                let i = c * p + j
                (sr[j], si[j]) = (wRe[i] * sr[j] - wIm[i] * si[j] + x, wRe[i] * si[j] + wIm[i] * sr[j])
                acc += kRe[i] * sr[j] - kIm[i] * si[j]
            }
            y[ts * n + c] = Float(2 * acc + Double(dir.d.pointer[c]) * x)
        }
    }
    return y
}
