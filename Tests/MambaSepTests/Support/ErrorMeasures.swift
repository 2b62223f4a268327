// How far apart two signals are.

import Foundation

/// ‖a − b‖ / ‖b‖ (0 when both are zero).
func relativeL2Error(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        let d = Double(a[i]) - Double(b[i])
        num += d * d
        den += Double(b[i]) * Double(b[i])
    }
    if den == 0 { return num == 0 ? 0 : .infinity }
    return (num / den).squareRoot()
}

/// max |a − b| of two equal-length arrays.
func maxAbsError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// `count` elements of `v` from `start`.
func slice(_ v: [Float], _ start: Int, _ count: Int) -> [Float] { Array(v[start..<(start + count)]) }
