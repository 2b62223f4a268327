// Vectorised elementary functions on SIMD8<Float> (8 lanes = one AVX register).
//
// Accuracy (measured in Tests/MambaSepTests/Tensor/FastMathTests.swift against Double libm):
// - `fastExp`: max relative error ≤ 2e-7 on [-87, 88] (Cody–Waite range reduction + Cephes
//   degree-5 polynomial). Inputs are clamped to [-87.3, 88]: below, the result is ≈1.2e-38
//   (not 0); above, ≈1.65e38 (not +inf). NaN inputs give unspecified finite values.
// - `fastLog`: max relative error ≤ 3e-7 for normal positive inputs; inputs ≤ 0 are not handled.
// - `fastErf`: Abramowitz–Stegun 7.1.26 (1.5e-7 in exact arithmetic); ≤ 5e-7 absolute in float.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

public typealias Vec8 = SIMD8<Float>

/// log2(e), written once: single precision for the kernels, double for the weight transforms.
public let log2e: Float = 1.442_695_040_888_963_4
public let log2eDouble: Double = 1.442_695_040_888_963_4

// MARK: - Lane-wise min / max

// The standard library's `pointwiseMax`/`pointwiseMin`/`clamped` are generic and end up as
// out-of-line calls in the hot loops; the AVX instructions are one cycle each.

/// Lane-wise maximum.
@inlinable @inline(__always) @_optimize(speed)
public func vmax(_ a: Vec8, _ b: Vec8) -> Vec8 {
    #if arch(x86_64)
    return _mm256_max_ps(a, b)
    #else
    return a.replacing(with: b, where: a .< b)
    #endif
}

/// Lane-wise minimum.
@inlinable @inline(__always) @_optimize(speed)
public func vmin(_ a: Vec8, _ b: Vec8) -> Vec8 {
    #if arch(x86_64)
    return _mm256_min_ps(a, b)
    #else
    return a.replacing(with: b, where: b .< a)
    #endif
}

/// Lane-wise conversion of integral-valued floats to Int32 (truncating).
@inlinable @inline(__always) @_optimize(speed)
public func vtruncate(_ a: Vec8) -> SIMD8<Int32> {
    #if arch(x86_64)
    return unsafeBitCast(_mm256_cvttps_epi32(a), to: SIMD8<Int32>.self)
    #else
    return SIMD8<Int32>(a, rounding: .towardZero)
    #endif
}

// MARK: - Loads and stores

extension UnsafePointer where Pointee == Float {
    /// Loads 8 consecutive floats (no alignment needed).
    @inlinable @inline(__always) @_optimize(speed)
    func vec8(_ i: Int) -> Vec8 { UnsafeRawPointer(self + i).loadUnaligned(as: Vec8.self) }
}

extension UnsafeMutablePointer where Pointee == Float {
    /// Loads 8 consecutive floats (no alignment needed).
    @inlinable @inline(__always) @_optimize(speed)
    func vec8(_ i: Int) -> Vec8 { UnsafeRawPointer(self + i).loadUnaligned(as: Vec8.self) }

    /// Stores 8 consecutive floats (no alignment needed).
    @inlinable @inline(__always) @_optimize(speed)
    func setVec8(_ i: Int, _ v: Vec8) { UnsafeMutableRawPointer(self + i).storeBytes(of: v, as: Vec8.self) }
}

// MARK: - exp / log

/// e^x for 8 lanes without clamping: valid for x in [-87.3, 88] (callers clamp or know the range).
///
/// n = round(x·log2 e) by the 1.5·2^23 trick, r = x − n·ln 2 (two-part ln 2), a degree-6
/// polynomial for e^r, then 2^n built in the exponent field.
@inlinable @inline(__always) @_optimize(speed)
public func fastExpUnclamped(_ x: Vec8) -> Vec8 {
    // The low mantissa bits of t hold n.
    let magic = Vec8(repeating: 12_582_912.0)
    let t = magic.addingProduct(x, Vec8(repeating: log2e))
    let n = t - magic
    var r = x.addingProduct(n, Vec8(repeating: -0.693_359_375))          // ln2 high part (exact)
    r = r.addingProduct(n, Vec8(repeating: 2.121_944_400_546_905_8e-4))  // ln2 low part
    var p = Vec8(repeating: 1.987_569_150_0e-4)
    p = Vec8(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
    p = Vec8(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
    p = Vec8(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
    p = Vec8(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
    p = Vec8(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
    let y = (r + 1).addingProduct(p, r * r)
    // 2^n: exponent field (n + 127) << 23; t's bit pattern is 0x4B400000 + n.
    let tb = unsafeBitCast(t, to: SIMD8<Int32>.self)
    let scale = unsafeBitCast((tb &- 0x4B40_0000 &+ 127) &<< 23, to: Vec8.self)
    return y * scale
}

/// e^x for 8 lanes; see the file header for accuracy and clamping.
@inlinable @inline(__always) @_optimize(speed)
public func fastExp(_ x: Vec8) -> Vec8 {
    fastExpUnclamped(vmin(vmax(x, Vec8(repeating: -87.3)), Vec8(repeating: 88.0)))
}

/// Natural log for 8 lanes of positive normal floats (Cephes logf polynomial; the mantissa is
/// brought into [√½, √2) with integer arithmetic only, as musl's logf does).
@inlinable @inline(__always) @_optimize(speed)
public func fastLog(_ x: Vec8) -> Vec8 {
    let bits = unsafeBitCast(x, to: SIMD8<Int32>.self)
    let ix = bits &- 0x3F35_04F3                               // bits of √½
    let e = Vec8(ix &>> 23)                                    // arithmetic shift: exponent
    let m = unsafeBitCast((ix & 0x007F_FFFF) &+ 0x3F35_04F3, to: Vec8.self)   // [√½, √2)
    let f = m - 1
    var p = Vec8(repeating: 7.037_683_629_2e-2)
    p = Vec8(repeating: -1.151_461_031_0e-1).addingProduct(p, f)
    p = Vec8(repeating: 1.167_699_874_0e-1).addingProduct(p, f)
    p = Vec8(repeating: -1.242_014_084_6e-1).addingProduct(p, f)
    p = Vec8(repeating: 1.424_932_278_7e-1).addingProduct(p, f)
    p = Vec8(repeating: -1.666_805_766_5e-1).addingProduct(p, f)
    p = Vec8(repeating: 2.000_071_476_5e-1).addingProduct(p, f)
    p = Vec8(repeating: -2.499_999_399_3e-1).addingProduct(p, f)
    p = Vec8(repeating: 3.333_333_117_4e-1).addingProduct(p, f)
    let f2 = f * f
    var y = p * f * f2
    y = y.addingProduct(e, Vec8(repeating: -2.121_944_400_546_905_8e-4))
    y = y.addingProduct(f2, Vec8(repeating: -0.5))
    return (f + y).addingProduct(e, Vec8(repeating: 0.693_359_375))
}

// MARK: - Activations (lane-wise)

/// Lane-wise absolute value (clears the sign bit).
@inlinable @inline(__always) @_optimize(speed)
public func vabs(_ x: Vec8) -> Vec8 {
    unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: Vec8.self)
}

/// The largest lane (scalar compares: `SIMD.max()` is an out-of-line generic call).
@inlinable @inline(__always) @_optimize(speed)
public func hmax(_ v: Vec8) -> Float {
    Swift.max(Swift.max(Swift.max(v[0], v[1]), Swift.max(v[2], v[3])), Swift.max(Swift.max(v[4], v[5]), Swift.max(v[6], v[7])))
}

/// Logistic sigmoid 1/(1+e^-x).
@inlinable @inline(__always) @_optimize(speed)
public func fastSigmoid(_ x: Vec8) -> Vec8 { 1 / (1 + fastExp(-x)) }

/// SiLU x·sigmoid(x).
@inlinable @inline(__always) @_optimize(speed)
public func fastSiLU(_ x: Vec8) -> Vec8 { x / (1 + fastExp(-x)) }

/// PyTorch softplus (beta 1, threshold 20): x for x > 20, else log(1 + e^x), computed as
/// max(x, 0) + log1p(e^−|x|), with log1p(y) = log(u) + (y − (u − 1))/u for u = 1 + y (the
/// correction restores the bits of y lost in 1 + y). For x > 20 the log1p term (< 2.1e-9) is below
/// half an ulp of x, so the result is exactly x, as PyTorch's threshold gives.
@inlinable @inline(__always) @_optimize(speed)
public func fastSoftplus(_ x: Vec8) -> Vec8 {
    let y = fastExp(-vabs(x))                      // (0, 1]
    let u = 1 + y
    let lp = fastLog(u) + (y - (u - 1)) / u
    return vmax(x, Vec8(repeating: 0)) + lp
}

/// tanh via 1 − 2/(e^{2x}+1); absolute error ≈ 1e-7.
@inlinable @inline(__always) @_optimize(speed)
public func fastTanh(_ x: Vec8) -> Vec8 { 1 - 2 / (fastExp(x + x) + 1) }

/// erf by Abramowitz–Stegun 7.1.26 (absolute error ≤ 5e-7 in float arithmetic).
@inlinable @inline(__always) @_optimize(speed)
public func fastErf(_ x: Vec8) -> Vec8 {
    let a = vabs(x)
    let t = 1 / Vec8(repeating: 1).addingProduct(a, Vec8(repeating: 0.327_591_1))
    var p = Vec8(repeating: 1.061_405_429)
    p = Vec8(repeating: -1.453_152_027).addingProduct(p, t)
    p = Vec8(repeating: 1.421_413_741).addingProduct(p, t)
    p = Vec8(repeating: -0.284_496_736).addingProduct(p, t)
    p = Vec8(repeating: 0.254_829_592).addingProduct(p, t)
    let e: Vec8 = fastExp(-(a * a))
    let pt: Vec8 = p * t
    let r: Vec8 = Vec8(repeating: 1) - pt * e                    // ≥ 0
    // erf is odd: give r the sign of x.
    let sign = unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x8000_0000
    return unsafeBitCast(unsafeBitCast(r, to: SIMD8<UInt32>.self) | sign, to: Vec8.self)
}

/// Exact-form GELU x·½·(1 + erf(x/√2)) (PyTorch's default, not the tanh approximation).
@inlinable @inline(__always) @_optimize(speed)
public func fastGELU(_ x: Vec8) -> Vec8 {
    x * 0.5 * (1 + fastErf(x * 0.707_106_781_186_547_6))
}

// MARK: - Array kernels

/// Applies `f` to `count` floats in place, 8 at a time; a tail shorter than 8 goes through a
/// zero-padded vector, so `f` must accept 0 without trapping.
@inlinable @inline(__always) @_optimize(speed)
public func mapInPlace(_ p: UnsafeMutablePointer<Float>, count: Int, _ f: (Vec8) -> Vec8) {
    var i = 0
    while i + 8 <= count {
        p.setVec8(i, f(p.vec8(i)))
        i += 8
    }
    if i < count {
        var v = Vec8(repeating: 0)
        for j in 0..<(count - i) { v[j] = p[i + j] }
        let r = f(v)
        for j in 0..<(count - i) { p[i + j] = r[j] }
    }
}

/// Scalar form of a lane-wise function (tests and odd sizes).
@inlinable
public func scalar(_ f: (Vec8) -> Vec8, _ x: Float) -> Float { f(Vec8(repeating: x))[0] }

// Concrete in-place kernels: `@_optimize(speed)` keeps them fast even in debug builds, so the
// test suite (which runs unoptimised) stays quick.

/// In-place ReLU.
@_optimize(speed)
public func reluInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) {
    mapInPlace(p, count: count) { vmax($0, Vec8(repeating: 0)) }
}

/// In-place PReLU with one shared slope: `x < 0 ? slope·x : x`.
@_optimize(speed)
public func preluInPlace(_ p: UnsafeMutablePointer<Float>, count: Int, slope: Float) {
    let zero = Vec8(repeating: 0)
    mapInPlace(p, count: count) { v in vmax(v, zero).addingProduct(vmin(v, zero), Vec8(repeating: slope)) }
}

/// In-place softplus (PyTorch semantics, see `fastSoftplus`). Never inlined: inlined into the
/// Mamba layers' forward pass it was compiled to 4-wide halves with its constants reloaded in
/// the loop, 7 % slower end to end (measured on `separate`, 10 s, 1 thread).
@inline(never) @_optimize(speed)
public func softplusInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) {
    mapInPlace(p, count: count, fastSoftplus)
}

/// In-place exact-form GELU.
@_optimize(speed)
public func geluInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) {
    mapInPlace(p, count: count, fastGELU)
}

/// `y += x` over `count` floats: residual connections and overlap-adds.
@inlinable @_optimize(speed)
public func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count { y.setVec8(i, y.vec8(i) + x.vec8(i)); i += 8 }
    while i < count { y[i] += x[i]; i += 1 }
}

/// Plain-loop reference for `addInPlace` (tests).
public func addInPlaceReference(_ y: [Float], _ x: [Float]) -> [Float] {
    precondition(y.count == x.count)
    var out = y
    for i in out.indices { out[i] = y[i] + x[i] }
    return out
}
