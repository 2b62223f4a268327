import Foundation
import XCTest
@testable import MambaSep

/// FFT convolution (the S4D long filters) against the direct sums.
final class FFTConvolutionTests: XCTestCase {
    func testFFTFilterMatchesDirectConvolutionBothDirections() {
        var rng = SeededRandom(seed: 31)
        for (n, t) in [(1, 1), (3, 10), (16, 33), (9, 64)] {
            let x = rng.floats(n * t), kf = rng.floats(n * t), kb = rng.floats(n * t)   // channel-major [N, T]
            let size = fftSize(forLength: t)
            for (kernel, anti) in [(kf, false), (kb, true)] {
                let spec = kernelSpectrum(kernel, channels: n, length: t, size: size, conjugate: anti)
                var xl = [Float](repeating: 0, count: t * n)                               // [T, N]
                for c in 0..<n { for i in 0..<t { xl[i * n + c] = x[c * t + i] } }
                var y = [Float](repeating: 0, count: t * n)
                xl.withUnsafeBufferPointer { xp in spec.withUnsafeBufferPointer { sp in y.withUnsafeMutableBufferPointer {
                    fftFilter(xp.baseAddress!, length: t, channels: n, spectrum: sp.baseAddress!, size: size, scratch: FFTScratch(), into: $0.baseAddress!, ldy: n)
                } } }
                let ref = directConvolutionReference(x, kernel: kernel, channels: n, length: t, antiCausal: anti)
                var refL = [Float](repeating: 0, count: t * n)
                for c in 0..<n { for i in 0..<t { refL[i * n + c] = ref[c * t + i] } }
                XCTAssertLessThan(relativeL2Error(y, refL), 1e-5, "n \(n) t \(t) anti \(anti)")
            }
        }
    }
}
