import Foundation
import XCTest
@testable import MambaSep

/// Accuracy of the vectorised elementary functions against Double libm.
final class FastMathTests: XCTestCase {
    /// Evaluates `f` lane-wise on `xs` (8 at a time).
    private func eval(_ xs: [Float], _ f: (Vec8) -> Vec8) -> [Float] {
        var out = xs
        out.withUnsafeMutableBufferPointer { mapInPlace($0.baseAddress!, count: xs.count, f) }
        return out
    }

    private func grid(_ lo: Float, _ hi: Float, _ n: Int) -> [Float] {
        (0..<n).map { lo + (hi - lo) * Float($0) / Float(n - 1) }
    }

    func testExpRelativeErrorWithinStatedBound() {
        let xs = grid(-87, 87.99, 200_003) + [0, -0.0, 1e-30, -1e-30, 0.5, -0.5, 1, -1]
        let ys = eval(xs, fastExp)
        var worst = 0.0, at: Float = 0
        for (x, y) in zip(xs, ys) {
            let ref = Foundation.exp(Double(x))
            let err = abs(Double(y) - ref) / ref
            if err > worst { worst = err; at = x }
        }
        XCTAssertLessThanOrEqual(worst, 2e-7, "fastExp max relative error \(worst) at x = \(at)")
    }

    func testExpNonPositiveMatchesFastExpAndClamps() {
        let xs = grid(-87.3, 0, 50_001)
        XCTAssertEqual(eval(xs, fastExpUnclamped), eval(xs, fastExp))
        // Outside the range fastExp clamps instead of producing garbage or infinities.
        let far = eval([-200, -1000, 200, 1000], fastExp)
        XCTAssertTrue(far[0] >= 0 && far[0] < 1e-37 && far[1] < 1e-37)
        XCTAssertTrue(far[2].isFinite && far[2] > 1e38 && far[3].isFinite)
    }

    func testLogRelativeError() {
        let xs = grid(1e-3, 1e4, 100_003) + [1, 2, 0.5, Float.leastNormalMagnitude * 4, 3e38]
        let ys = eval(xs, fastLog)
        var worst = 0.0
        for (x, y) in zip(xs, ys) {
            let ref = Foundation.log(Double(x))
            let err = abs(Double(y) - ref) / max(abs(ref), 1e-3)
            worst = max(worst, err)
        }
        XCTAssertLessThanOrEqual(worst, 3e-7, "fastLog max error \(worst)")
    }

    func testSoftplusMatchesPyTorchDefinition() {
        let xs = grid(-40, 40, 40_001)
        let ys = eval(xs, fastSoftplus)
        for (x, y) in zip(xs, ys) {
            let ref = x > 20 ? Double(x) : Foundation.log1p(Foundation.exp(Double(x)))
            XCTAssertLessThanOrEqual(abs(Double(y) - ref), 4e-7 * max(1, ref), "softplus(\(x)) = \(y), want \(ref)")
        }
    }

    func testSigmoidSiLUTanhGELU() {
        let xs = grid(-30, 30, 30_001)
        let sig = eval(xs, fastSigmoid), silu = eval(xs, fastSiLU), th = eval(xs, fastTanh), gelu = eval(xs, fastGELU)
        for i in 0..<xs.count {
            let x = Double(xs[i])
            let s = 1 / (1 + Foundation.exp(-x))
            XCTAssertEqual(Double(sig[i]), s, accuracy: 3e-7 * max(s, 1e-30) + 1e-12)
            XCTAssertEqual(Double(silu[i]), x * s, accuracy: 4e-7 * max(abs(x * s), 1e-6))
            XCTAssertEqual(Double(th[i]), Foundation.tanh(x), accuracy: 3e-7)
            let g = x * 0.5 * (1 + Foundation.erf(x / 2.0.squareRoot()))
            XCTAssertEqual(Double(gelu[i]), g, accuracy: 3e-7 * max(1, abs(x)), "gelu(\(x))")
        }
    }

    func testErfAbsoluteError() {
        let xs = grid(-6, 6, 60_001)
        let ys = eval(xs, fastErf)
        var worst = 0.0
        for (x, y) in zip(xs, ys) { worst = max(worst, abs(Double(y) - Foundation.erf(Double(x)))) }
        XCTAssertLessThanOrEqual(worst, 5e-7, "fastErf max abs error \(worst)")
    }

    func testMapInPlaceHandlesTails() {
        for n in [0, 1, 7, 8, 9, 15, 17] {
            let xs = (0..<n).map { Float($0) - 3 }
            let ys = eval(xs) { pointwiseMax($0, Vec8(repeating: 0)) }
            XCTAssertEqual(ys, xs.map { max($0, 0) }, "n = \(n)")
        }
    }
}
