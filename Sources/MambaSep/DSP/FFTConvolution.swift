// Long causal / anti-causal convolutions through FFTW (single precision), with cached plans.
//
// Glossary (docs/MODEL.md): `L'` sequence length, `N` channels (independent signals), `F` FFT size
// (≥ 2L', so circular convolution does not wrap), `Fh = F/2 + 1` spectrum bins.
//
// Signal blocks arrive channels-last `[L', N]`; they are transposed into channel-major rows
// `[N, F]` (zero-padded) so that one FFTW "many" plan transforms all N channels as contiguous
// rows, FFTW's fast layout (strided input made FFTW spend most of its time copying). Spectra are
// `[N, Fh]` complex (interleaved re/im, `[N, Fh, 2]` floats).

import CFFTW
import Foundation

// MARK: - Plan cache

/// Process-wide cache of FFTW plans keyed by (size, channel count, direction).
///
/// FFTW planning is not thread-safe, so every plan is created behind one lock (with
/// `FFTW_ESTIMATE`, which neither measures nor touches the arrays); executing a plan on other
/// arrays (`fftwf_execute_dft_r2c`/`_c2r`) is thread-safe. Plans live for the whole process.
public final class FFTPlanCache: @unchecked Sendable {
    public static let shared = FFTPlanCache()

    private struct Key: Hashable { let size: Int; let channels: Int; let forward: Bool }
    private let lock = NSLock()
    private var plans: [Key: OpaquePointer] = [:]

    /// Real-to-complex plan for `channels` signals of `size` samples, strided as described above.
    func forwardPlan(size: Int, channels: Int) -> OpaquePointer { plan(Key(size: size, channels: channels, forward: true)) }

    /// Complex-to-real plan (unnormalised: the result is `size` times the signal).
    func inversePlan(size: Int, channels: Int) -> OpaquePointer { plan(Key(size: size, channels: channels, forward: false)) }

    /// Number of plans created so far (tests check caching).
    public var count: Int { lock.lock(); defer { lock.unlock() }; return plans.count }

    private func plan(_ key: Key) -> OpaquePointer {
        lock.lock()
        defer { lock.unlock() }
        if let p = plans[key] { return p }
        let bins = key.size / 2 + 1
        // Planning arrays: 64-byte aligned like every buffer the engine executes on.
        let real = alignedFloatAlloc(key.size * key.channels)
        let cplx = alignedFloatAlloc(2 * bins * key.channels)
        defer { free(real); free(cplx) }
        var n = Int32(key.size)
        let ch = Int32(key.channels)
        let cp = UnsafeMutableRawPointer(cplx).assumingMemoryBound(to: fftwf_complex.self)
        let flags = UInt32(FFTW_ESTIMATE)
        let p: OpaquePointer?
        let (size, bins32) = (Int32(key.size), Int32(bins))
        if key.forward {
            p = fftwf_plan_many_dft_r2c(1, &n, ch, real, nil, 1, size, cp, nil, 1, bins32, flags)
        } else {
            p = fftwf_plan_many_dft_c2r(1, &n, ch, cp, nil, 1, bins32, real, nil, 1, size, flags)
        }
        guard let p else { fatalError("FFTW could not plan a transform of size \(key.size) × \(key.channels)") }
        plans[key] = p
        return p
    }
}

// MARK: - Convolution

/// FFT size used for sequences of `length` samples: the smallest 2^a·3^b·5^c ≥ 2·length with
/// a ≥ 1 (even, and fast for FFTW).
public func fftSize(forLength length: Int) -> Int {
    var f = max(2, 2 * length)
    while true {
        var r = f
        for p in [2, 3, 5] { while r % p == 0 { r /= p } }
        if r == 1 && f % 2 == 0 { return f }
        f += 1
    }
}

/// Spectrum `[N, Fh]` (complex) of a kernel `[N, L']` (channel-major, as PyTorch builds it),
/// zero-padded to `size`. With `conjugate`, returns the conjugate, which turns convolution into
/// correlation: applying it gives the anti-causal filter `y[t] = Σ_l k[l]·x[t + l]`.
public func kernelSpectrum(_ kernel: [Float], channels: Int, length: Int, size: Int, conjugate: Bool) -> [Float] {
    let bins = size / 2 + 1
    let real = alignedFloatAlloc(size * channels)
    let cplx = alignedFloatAlloc(2 * bins * channels)
    defer { free(real); free(cplx) }
    real.update(repeating: 0, count: size * channels)
    for c in 0..<channels { for l in 0..<length { real[c * size + l] = kernel[c * length + l] } }
    let plan = FFTPlanCache.shared.forwardPlan(size: size, channels: channels)
    fftwf_execute_dft_r2c(plan, real, UnsafeMutableRawPointer(cplx).assumingMemoryBound(to: fftwf_complex.self))
    var out = Array(UnsafeBufferPointer(start: cplx, count: 2 * bins * channels))
    if conjugate { for i in stride(from: 1, to: out.count, by: 2) { out[i] = -out[i] } }
    return out
}

/// Reusable buffers for `fftFilter` (one per thread).
public final class FFTScratch {
    let real = ScratchBuffer()
    let spectrum = ScratchBuffer()
    public init() {}
}

/// Filters one channels-last block `x [L', N]` by a precomputed spectrum `[N, Fh]` (from
/// `kernelSpectrum`, possibly a sum of several) and writes `y [L', N]` (rows `ldy` apart).
///
/// `size` must be the FFT size the spectrum was made for and ≥ 2L' so nothing wraps. `L' == 0`
/// does nothing.
@_optimize(speed)
public func fftFilter(_ x: UnsafePointer<Float>, length t: Int, channels n: Int,
                      spectrum: UnsafePointer<Float>, size: Int, scratch: FFTScratch,
                      into y: UnsafeMutablePointer<Float>, ldy: Int) {
    guard t > 0 else { return }
    precondition(size >= 2 * t, "FFT size \(size) too small for length \(t)")
    let bins = size / 2 + 1
    let real = scratch.real.reserve(size * n)                // [N, F]
    let spec = scratch.spectrum.reserve(2 * bins * n)        // [N, Fh, 2]
    // Transpose into zero-padded channel rows.
    for c in 0..<n {
        let row = real + c * size
        for i in 0..<t { row[i] = x[i * n + c] }
        (row + t).update(repeating: 0, count: size - t)
    }
    let cp = UnsafeMutableRawPointer(spec).assumingMemoryBound(to: fftwf_complex.self)
    fftwf_execute_dft_r2c(FFTPlanCache.shared.forwardPlan(size: size, channels: n), real, cp)
    // Pointwise complex product with the kernel spectrum.
    for i in 0..<(bins * n) {
        let ar = spec[2 * i], ai = spec[2 * i + 1]
        let br = spectrum[2 * i], bi = spectrum[2 * i + 1]
        spec[2 * i] = ar * br - ai * bi
        spec[2 * i + 1] = ar * bi + ai * br
    }
    fftwf_execute_dft_c2r(FFTPlanCache.shared.inversePlan(size: size, channels: n), cp, real)
    // Back to channels-last, scaled by 1/F (FFTW's inverse is unnormalised).
    let scale = 1 / Float(size)
    for i in 0..<t {
        let dst = y + i * ldy
        for c in 0..<n { dst[c] = real[c * size + i] * scale }
    }
}

// MARK: - Reference

/// Direct O(L'²) convolution reference, channel-major: `x`, `kernel` `[N, L']`; causal gives
/// `y[t] = Σ_{l ≤ t} k[l]·x[t − l]`, anti-causal `y[t] = Σ_{l < L' − t} k[l]·x[t + l]`.
public func directConvolutionReference(_ x: [Float], kernel: [Float], channels: Int, length: Int,
                                       antiCausal: Bool) -> [Float] {
    var y = [Float](repeating: 0, count: channels * length)
    for c in 0..<channels {
        for t in 0..<length {
            var acc: Double = 0
            if antiCausal {
                for l in 0..<(length - t) { acc += Double(kernel[c * length + l]) * Double(x[c * length + t + l]) }
            } else {
                for l in 0...t { acc += Double(kernel[c * length + l]) * Double(x[c * length + t - l]) }
            }
            y[c * length + t] = Float(acc)
        }
    }
    return y
}
