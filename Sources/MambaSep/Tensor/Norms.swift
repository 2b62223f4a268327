// Normalisations in channels-last layout.
//
// Glossary (docs/MODEL.md): `Q` positions (rows), `N` channels (contiguous within a row).

import Foundation

// MARK: - RMSNorm

/// RMSNorm over each row: `y = x / sqrt(mean(x²) + eps) · weight` (weight only, no bias).
///
/// `x` and `y` are `[rows, n]` and may be the same buffer. `weight` has `n` floats.
@inlinable
@_optimize(speed)
public func rmsNorm(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, n: Int,
                    weight: UnsafePointer<Float>, eps: Float) {
    let n8 = n & ~7
    for r in 0..<rows {
        let xr = x + r * n
        let yr = y + r * n
        var acc = Vec8(repeating: 0)
        var j = 0
        while j < n8 { let v = xr.vec8(j); acc = acc.addingProduct(v, v); j += 8 }
        var ss = acc.sum()
        while j < n { ss += xr[j] * xr[j]; j += 1 }
        let scale = 1 / (ss / Float(n) + eps).squareRoot()
        let sv = Vec8(repeating: scale)
        j = 0
        while j < n8 { yr.setVec8(j, xr.vec8(j) * sv * weight.vec8(j)); j += 8 }
        while j < n { yr[j] = xr[j] * scale * weight[j]; j += 1 }
    }
}

// MARK: - GroupNorm(1, N)

/// Mean and (biased) variance over all `rows·n` elements, accumulated in Double per row.
@inlinable
@_optimize(speed)
public func meanAndVariance(_ x: UnsafePointer<Float>, rows: Int, n: Int) -> (mean: Double, variance: Double) {
    let total = rows * n
    guard total > 0 else { return (0, 0) }
    let n8 = n & ~7
    var sum: Double = 0
    for r in 0..<rows {
        let xr = x + r * n
        var acc = Vec8(repeating: 0)
        var j = 0
        while j < n8 { acc += xr.vec8(j); j += 8 }
        var s = Double(acc.sum())
        while j < n { s += Double(xr[j]); j += 1 }
        sum += s
    }
    let mean = sum / Double(total)
    let mv = Vec8(repeating: Float(mean))
    var sq: Double = 0
    for r in 0..<rows {
        let xr = x + r * n
        var acc = Vec8(repeating: 0)
        var j = 0
        while j < n8 { let d = xr.vec8(j) - mv; acc = acc.addingProduct(d, d); j += 8 }
        var s = Double(acc.sum())
        while j < n { let d = Double(xr[j]) - mean; s += d * d; j += 1 }
        sq += s
    }
    return (mean, sq / Double(total))
}

/// `GroupNorm(1, N)` on one sample held as `[rows, n]` (all positions of all channels form one
/// group): `y = (x − mean)/sqrt(var + eps) · weight[c] + bias[c]`.
///
/// `x` and `y` may be the same buffer. A constant input gives `bias` (variance 0, eps keeps it finite).
@inlinable
public func groupNorm1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, n: Int,
                       weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float) {
    let (mean, variance) = meanAndVariance(x, rows: rows, n: n)
    groupNorm1Apply(x, y, rows: rows, n: n, mean: mean, variance: variance, weight: weight, bias: bias, eps: eps)
}

/// The affine step of `groupNorm1` with precomputed statistics: `y = (x − mean)·a[c] + bias[c]`
/// with `a = weight/sqrt(var + eps)` (subtracting first keeps near-constant inputs exact).
@inlinable
@_optimize(speed)
public func groupNorm1Apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, n: Int,
                            mean: Double, variance: Double,
                            weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float) {
    let inv = 1 / (variance + Double(eps)).squareRoot()
    var a = [Float](repeating: 0, count: n)
    for c in 0..<n { a[c] = Float(Double(weight[c]) * inv) }
    let m = Float(mean)
    let mv = Vec8(repeating: m)
    a.withUnsafeBufferPointer { ap in
        let ap = ap.baseAddress!
        let n8 = n & ~7
        for r in 0..<rows {
            let xr = x + r * n, yr = y + r * n
            var j = 0
            while j < n8 { yr.setVec8(j, bias.vec8(j).addingProduct(xr.vec8(j) - mv, ap.vec8(j))); j += 8 }
            while j < n { yr[j] = bias[j] + (xr[j] - m) * ap[j]; j += 1 }
        }
    }
}

// MARK: - References

/// Plain-loop RMSNorm (tests).
public func rmsNormReference(_ x: [Float], rows: Int, n: Int, weight: [Float], eps: Float) -> [Float] {
    var y = x
    for r in 0..<rows {
        var ss: Double = 0
        for j in 0..<n { ss += Double(x[r * n + j]) * Double(x[r * n + j]) }
        let s = 1 / (ss / Double(n) + Double(eps)).squareRoot()
        for j in 0..<n { y[r * n + j] = Float(Double(x[r * n + j]) * s * Double(weight[j])) }
    }
    return y
}

/// Plain-loop GroupNorm(1, N) (tests).
public func groupNorm1Reference(_ x: [Float], rows: Int, n: Int, weight: [Float], bias: [Float], eps: Float) -> [Float] {
    let mean = x.reduce(0.0) { $0 + Double($1) } / Double(x.count)
    let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(x.count)
    var y = x
    for r in 0..<rows {
        for j in 0..<n {
            y[r * n + j] = Float((Double(x[r * n + j]) - mean) / (variance + Double(eps)).squareRoot()
                                 * Double(weight[j]) + Double(bias[j]))
        }
    }
    return y
}
