// Log-magnitude spectrograms: a short-time Fourier transform (periodic Hann window, frames
// centred on multiples of the hop, zero padding at the ends) through FFTW's cached plans, and a
// direct-DFT reference beside it.
//
// Glossary: `T` samples, `F` FFT size (window length), `Hs` hop in samples, `Nf` frames
// (`T / Hs + 1`), `Fh = F/2 + 1` frequency bins.

import CFFTW
import Foundation

// MARK: - Spectrogram

/// Power per frame and frequency bin in dB full scale: a full-scale sine (amplitude 1) centred on
/// a bin reads 0 dB there. Frame `f` is centred on sample `f·Hs`; bin `k` is `k·rate/F` Hz.
public struct Spectrogram: Sendable, Equatable {
    public let sampleRate: Int
    public let fftSize: Int            // F
    public let hop: Int                // Hs
    public let frames: Int             // Nf
    public let bins: Int               // Fh
    /// `[Nf, Fh]` dB values, floored at `floorDecibels`.
    public let decibels: [Float]

    /// The lowest value stored (silence): −120 dB.
    public static let floorDecibels: Float = -120

    /// Seconds from the signal's start to the centre of frame `f`.
    public func time(ofFrame f: Int) -> Double { Double(f * hop) / Double(sampleRate) }
    /// Centre frequency of bin `k`, in Hz.
    public func frequency(ofBin k: Int) -> Double { Double(k * sampleRate) / Double(fftSize) }
    /// dB value of frame `f`, bin `k`.
    public subscript(frame f: Int, bin k: Int) -> Float { decibels[f * bins + k] }

    /// The FFT size used by default: the power of two nearest 32 ms (256 at 8 kHz, 512 at 16 kHz).
    public static func defaultFFTSize(sampleRate: Int) -> Int {
        let target = 0.032 * Double(sampleRate)
        return 1 << max(3, Int((log2(target)).rounded()))
    }
}

/// Periodic Hann window of `size` samples, `0.5 − 0.5·cos(2πn/size)`.
public func hannWindow(_ size: Int) -> [Float] {
    (0..<size).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(size))) }
}

/// The dB-full-scale value of a bin of squared magnitude `power` under a window summing to `windowSum`.
@inline(__always)
func fullScaleDecibels(power: Double, windowSum: Double) -> Float {
    let scaled = power * 4 / (windowSum * windowSum)       // a sine of amplitude 1 → 1
    return max(Float(10 * log10(max(scaled, 1e-30))), Spectrogram.floorDecibels)
}

// MARK: - Fast STFT (FFTW)

/// Frames transformed per FFTW call (one cached "many" plan serves every signal length).
let spectrogramBatch = 32

/// Spectrogram of `x` with FFT size `fftSize` (a power of two ≥ 8 is fastest; any even size
/// works) and hop `hop` (default `fftSize/4`). An empty signal gives 0 frames.
public func spectrogram(_ x: [Float], sampleRate: Int, fftSize: Int? = nil, hop: Int? = nil) -> Spectrogram {
    let f = fftSize ?? Spectrogram.defaultFFTSize(sampleRate: sampleRate)
    let hs = hop ?? max(1, f / 4)
    precondition(f >= 2 && f % 2 == 0 && hs >= 1, "FFT size \(f) must be even and ≥ 2, hop \(hs) ≥ 1")
    let nf = x.isEmpty ? 0 : x.count / hs + 1, fh = f / 2 + 1
    let window = hannWindow(f)
    let windowSum = window.reduce(0.0) { $0 + Double($1) }
    var db = [Float](repeating: Spectrogram.floorDecibels, count: nf * fh)           // [Nf, Fh]
    let real = alignedFloatAlloc(spectrogramBatch * f)                                 // [32, F]
    let cplx = alignedFloatAlloc(2 * spectrogramBatch * fh)                            // [32, Fh, 2]
    defer { free(real); free(cplx) }
    let plan = FFTPlanCache.shared.forwardPlan(size: f, channels: spectrogramBatch)
    var first = 0
    while first < nf {
        let count = min(spectrogramBatch, nf - first)
        real.update(repeating: 0, count: spectrogramBatch * f)
        for j in 0..<count {
            let row = real + j * f, origin = (first + j) * hs - f / 2
            for n in max(0, -origin)..<min(f, x.count - origin) { row[n] = x[origin + n] * window[n] }
        }
        fftwf_execute_dft_r2c(plan, real, UnsafeMutableRawPointer(cplx).assumingMemoryBound(to: fftwf_complex.self))
        for j in 0..<count {
            let spec = cplx + 2 * j * fh
            for k in 0..<fh {
                let re = Double(spec[2 * k]), im = Double(spec[2 * k + 1])
                db[(first + j) * fh + k] = fullScaleDecibels(power: re * re + im * im, windowSum: windowSum)
            }
        }
        first += count
    }
    return Spectrogram(sampleRate: sampleRate, fftSize: f, hop: hs, frames: nf, bins: fh, decibels: db)
}

// MARK: - Reference

/// Direct-DFT spectrogram (Double, O(Nf·F·Fh)) with the same framing and scaling, for tests.
public func spectrogramReference(_ x: [Float], sampleRate: Int, fftSize f: Int, hop hs: Int) -> Spectrogram {
    let nf = x.isEmpty ? 0 : x.count / hs + 1, fh = f / 2 + 1
    let window = hannWindow(f)
    let windowSum = window.reduce(0.0) { $0 + Double($1) }
    var db = [Float](repeating: 0, count: nf * fh)
    for frame in 0..<nf {
        let origin = frame * hs - f / 2
        for k in 0..<fh {
            var re = 0.0, im = 0.0
            for n in 0..<f where origin + n >= 0 && origin + n < x.count {
                let v = Double(x[origin + n]) * Double(window[n])
                let phase = -2 * Double.pi * Double((k * n) % f) / Double(f)
                re += v * cos(phase)
                im += v * sin(phase)
            }
            db[frame * fh + k] = fullScaleDecibels(power: re * re + im * im, windowSum: windowSum)
        }
    }
    return Spectrogram(sampleRate: sampleRate, fftSize: f, hop: hs, frames: nf, bins: fh, decibels: db)
}
