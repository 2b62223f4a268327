import Foundation
import XCTest
@testable import MambaSep

/// Fast kernels (GEMM, norms, convolutions) against plain-loop references.
final class KernelTests: XCTestCase {
    func testLinearMatchesReferenceWithAndWithoutBias() {
        var rng = SeededRandom(seed: 11)
        for (rows, i, o) in [(1, 1, 1), (5, 7, 3), (33, 16, 40), (0, 4, 4)] {
            let x = rng.floats(rows * i), w = rng.floats(o * i), b = rng.floats(o)
            for bias in [false, true] {
                let wt = Tensor(shape: [o, i], values: w), bt = Tensor(shape: [o], values: b)
                var y = [Float](repeating: .nan, count: max(rows * o, 1))
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { yp in
                        linear(xp.baseAddress ?? UnsafePointer(bitPattern: 64)!, ldx: i, rows: rows, weight: wt,
                               bias: bias ? bt : nil, inFeatures: i, outFeatures: o, into: yp.baseAddress!, ldy: o)
                    }
                }
                let ref = linearReference(x, rows: rows, weight: w, bias: bias ? b : nil, inFeatures: i, outFeatures: o)
                if rows > 0 { XCTAssertLessThan(maxAbsError(Array(y.prefix(rows * o)), ref), 1e-5) }
            }
        }
    }

    func testRMSNormAndGroupNormMatchReferences() {
        var rng = SeededRandom(seed: 12)
        for (rows, n) in [(3, 16), (5, 13), (1, 1), (40, 128)] {
            let x = rng.floats(rows * n, -3, 5), w = rng.floats(n), b = rng.floats(n)
            var y = x, g = x
            x.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    b.withUnsafeBufferPointer { bp in
                        y.withUnsafeMutableBufferPointer { rmsNorm(xp.baseAddress!, $0.baseAddress!, rows: rows, n: n, weight: wp.baseAddress!, eps: 1e-5) }
                        g.withUnsafeMutableBufferPointer { groupNorm1(xp.baseAddress!, $0.baseAddress!, rows: rows, n: n, weight: wp.baseAddress!, bias: bp.baseAddress!, eps: 1e-8) }
                    }
                }
            }
            XCTAssertLessThan(maxAbsError(y, rmsNormReference(x, rows: rows, n: n, weight: w, eps: 1e-5)), 2e-6)
            XCTAssertLessThan(maxAbsError(g, groupNorm1Reference(x, rows: rows, n: n, weight: w, bias: b, eps: 1e-8)), 5e-6)
        }
    }

    func testGroupNormOfConstantInputGivesBias() {
        let x = [Float](repeating: 3, count: 32), w = [Float](repeating: 2, count: 8), b = (0..<8).map(Float.init)
        var y = x
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { bp in
            y.withUnsafeMutableBufferPointer { groupNorm1(xp.baseAddress!, $0.baseAddress!, rows: 4, n: 8, weight: wp.baseAddress!, bias: bp.baseAddress!, eps: 1e-8) }
        } } }
        for r in 0..<4 { XCTAssertEqual(Array(y[(r * 8)..<(r * 8 + 8)]), b) }
    }

    func testStridedConvAndTransposedConvMatchDirectLoops() {
        var rng = SeededRandom(seed: 13)
        let n = 12, k = 16, st = 8, frames = 9
        let samples = (frames - 1) * st + k
        let x = rng.floats(samples), wv = rng.floats(n * k)
        let wt = Tensor(shape: [n, 1, k], values: wv)
        var y = [Float](repeating: 0, count: frames * n)
        let scratch = ScratchBuffer()
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { conv1dMonoStrided(xp.baseAddress!, samples: samples, weight: wt, channels: n, kernel: k, stride: st, frames: scratch, into: $0.baseAddress!) }
        }
        for f in 0..<frames {
            for c in 0..<n {
                var acc: Float = 0
                for j in 0..<k { acc += x[f * st + j] * wv[c * k + j] }
                XCTAssertEqual(y[f * n + c], acc, accuracy: 1e-5)
            }
        }
        // Transposed conv: y[t] = Σ_f Σ_c x[f, c]·w[c, t − f·St].
        var out = [Float](repeating: .nan, count: samples)
        y.withUnsafeBufferPointer { yp in
            out.withUnsafeMutableBufferPointer { convTranspose1dMono(yp.baseAddress!, frames: frames, weight: wt, channels: n, kernel: k, stride: st, scratch: scratch, into: $0.baseAddress!) }
        }
        for t in 0..<samples {
            var acc: Float = 0
            for f in 0..<frames where t - f * st >= 0 && t - f * st < k {
                for c in 0..<n { acc += y[f * n + c] * wv[c * k + t - f * st] }
            }
            XCTAssertEqual(out[t], acc, accuracy: 1e-4)
        }
    }

    func testDepthwiseConvCausalAndAntiCausal() {
        var rng = SeededRandom(seed: 14)
        let e = 20, w = 4, len = 11, ldx = 2 * e
        let x = rng.floats(len * ldx), wv = rng.floats(e * w), bias = rng.floats(e)
        var wT = [Float](repeating: 0, count: w * e)
        for c in 0..<e { for j in 0..<w { wT[j * e + c] = wv[c * w + j] } }
        for reverse in [false, true] {
            var y = [Float](repeating: 0, count: len * e)
            x.withUnsafeBufferPointer { xp in wT.withUnsafeBufferPointer { wp in bias.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer {
                    depthwiseConvSiLU(xp.baseAddress!, ldx: ldx, len: len, weightT: wp.baseAddress!, bias: bp.baseAddress!,
                                      channels: e, width: w, reverse: reverse, into: $0.baseAddress!, ldy: e)
                }
            } } }
            // Reference: flip, causal conv with left padding W−1, flip back.
            let order = reverse ? Array((0..<len).reversed()) : Array(0..<len)
            for (ti, t) in order.enumerated() {
                for c in 0..<e {
                    var acc = Double(bias[c])
                    for j in 0..<w {
                        let si = ti - (w - 1) + j
                        if si >= 0 { acc += Double(wv[c * w + j]) * Double(x[order[si] * ldx + c]) }
                    }
                    let silu = acc / (1 + Foundation.exp(-acc))
                    XCTAssertEqual(Double(y[t * e + c]), silu, accuracy: 2e-6, "reverse \(reverse) t \(t) c \(c)")
                }
            }
        }
    }

    func testTransposeRows() {
        let src: [Float] = (0..<24).map(Float.init)                 // [2, 3, 4]
        var dst = [Float](repeating: 0, count: 24)                    // [3, 2, 4]
        src.withUnsafeBufferPointer { s in dst.withUnsafeMutableBufferPointer { transposeRows(s.baseAddress!, $0.baseAddress!, rows: 2, cols: 3, width: 4) } }
        for r in 0..<2 { for c in 0..<3 { for k in 0..<4 { XCTAssertEqual(dst[(c * 2 + r) * 4 + k], src[(r * 3 + c) * 4 + k]) } } }
    }

    func testParallelForVisitsEveryItemOnce() {
        for workers in [1, 2, 3] {
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: 17)
            counts.initialize(repeating: 0, count: 17)
            defer { counts.deallocate() }
            parallelFor(17, workers: workers) { i, _ in counts[i] += 1 }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: counts, count: 17)), [Int](repeating: 1, count: 17))
        }
    }

    func testAddInPlaceMatchesReference() {
        var rng = SeededRandom(seed: 41)
        for n in [1, 7, 8, 9, 130] {
            let y = rng.floats(n), x = rng.floats(n)
            var got = y
            got.withUnsafeMutableBufferPointer { yp in x.withUnsafeBufferPointer { addInPlace(yp.baseAddress!, $0.baseAddress!, count: n) } }
            XCTAssertEqual(got, addInPlaceReference(y, x), "n \(n)")
        }
    }

    func testTransposedAndTheLoaderTransforms() {
        // Depthwise conv taps [E, 1, W] → [W, E].
        let taps = Tensor(shape: [3, 1, 2], values: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(transposed(taps, rows: 3, cols: 2).toArray(), [1, 3, 5, 2, 4, 6])
        XCTAssertEqual(depthwiseTaps(taps).shape, [2, 3])
        XCTAssertEqual(depthwiseTaps(taps).toArray(), [1, 3, 5, 2, 4, 6])
        // A_log [E, M] → A·log2(e) [M, E], A = −exp(A_log).
        let aLog = Tensor(shape: [2, 3], values: [0, 0.5, 1, 1.5, 2, -3])
        let rates = scanDecayRates(aLog: aLog)
        XCTAssertEqual(rates.shape, [3, 2])
        for e in 0..<2 {
            for m in 0..<3 {
                let expected = -Foundation.exp(Double(aLog[flat: e * 3 + m])) / Foundation.log(2)
                XCTAssertEqual(Double(rates[flat: m * 2 + e]), expected, accuracy: 1e-6 * abs(expected))
            }
        }
    }
}
