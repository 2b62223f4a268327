import Foundation
import XCTest
@testable import MambaSep

/// The vectorised selective scan against its plain-loop reference, and BiMamba against a
/// composition of plain references.
final class SelectiveScanTests: XCTestCase {
    typealias Case = RandomScan

    func testFastScanMatchesReferenceBothDirections() {
        for (t, e, m, seed) in [(1, 8, 1, 1), (37, 16, 4, 2), (120, 64, 16, 3), (5, 256, 16, 4)] as [(Int, Int, Int, UInt64)] {
            let k = Case(t: t, e: e, m: m, seed: seed)
            for reverse in [false, true] {
                let err = relativeL2Error(k.fast(reverse: reverse), k.reference(reverse: reverse))
                XCTAssertLessThan(err, 2e-6, "t \(t) e \(e) m \(m) reverse \(reverse)")
            }
        }
    }

    func testReverseScanIsScanOfFlippedSequence() {
        let k = Case(t: 23, e: 8, m: 3, seed: 5)
        func flip(_ v: [Float], _ w: Int) -> [Float] {
            var out: [Float] = []
            for i in (0..<k.t).reversed() { out += slice(v, i * w, w) }
            return out
        }
        var f = k
        f.x = flip(k.x, k.e); f.delta = flip(k.delta, k.e); f.b = flip(k.b, k.m); f.c = flip(k.c, k.m)
        XCTAssertLessThan(relativeL2Error(flip(f.reference(reverse: false), k.e), k.reference(reverse: true)), 1e-6)
    }

    func testAverageAndGateFusesBothDirections() {
        let k = Case(t: 17, e: 16, m: 4, seed: 6)
        var rng = SeededRandom(seed: 7)
        let z = rng.floats(k.t * k.e, -3, 3)
        let yf = k.reference(reverse: false), yb = k.reference(reverse: true)
        let fused = k.fast(reverse: true, gateWith: z, initial: yf)
        let expect = (0..<yf.count).map { i -> Float in
            let zi = Double(z[i])
            return Float((Double(yf[i]) + Double(yb[i])) / 2 * zi / (1 + Foundation.exp(-zi)))
        }
        XCTAssertLessThan(relativeL2Error(fused, expect), 2e-6)
    }

    func testScanExp2Accuracy() {
        var worst = 0.0, at: Float = 0
        var z: Float = -125
        while z <= 0 {
            let v = fastExp2Scan(Vec8(repeating: z))[0]
            let ref = Foundation.pow(2.0, Double(z))
            let err = abs(Double(v) - ref) / ref
            if err > worst { worst = err; at = z }
            z += 0.000_731
        }
        XCTAssertLessThanOrEqual(worst, 2e-7, "fastExp2Scan max relative error \(worst) at \(at)")
        XCTAssertEqual(fastExp2Scan(Vec8(repeating: -1000))[0], Float(Foundation.pow(2.0, -125.0)))
    }

    func testLargeStepsStayFinite() {
        var k = Case(t: 30, e: 8, m: 4, seed: 8)
        k.delta = k.delta.map { $0 * 1000 }                 // Δ·A far below −87: exp clamps to ≈0
        let y = k.fast(reverse: false)
        XCTAssertTrue(y.allSatisfy(\.isFinite))
        XCTAssertLessThan(relativeL2Error(y, k.reference(reverse: false)), 1e-5)
    }
}
