// Matrix products through OpenBLAS `cblas_sgemm`, and the linear layers built on them.
//
// Glossary (docs/MODEL.md): `Q` rows (positions), `I` input features, `O` output features; the
// GEMM wrapper keeps BLAS's own lower-case `m`, `n`, `k`.

import COpenBLAS

// MARK: - GEMM

/// Thin wrappers over OpenBLAS, row-major throughout.
public enum BLAS {
    /// `C[m, n] = alpha · op(A) · op(B) + beta · C` (op(A) `[m, k]`, op(B) `[k, n]`), row-major, with
    /// the usual leading dimensions.
    ///
    /// Zero-sized products are skipped (OpenBLAS would accept them, but there is nothing to do);
    /// with `k == 0` and `beta == 0` the output is cleared.
    @inlinable
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if beta == 0 { for r in 0..<m { (c + r * ldc).update(repeating: 0, count: n) } }
            return
        }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Sets the number of threads OpenBLAS may use for one product (at least 1).
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }

    /// The number of threads OpenBLAS currently uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }
}

// MARK: - Linear

/// `y[Q, O] = x[Q, I] · Wᵀ (+ bias)`: a PyTorch `nn.Linear`, or a 1x1 `Conv1d` in channels-last layout.
///
/// `weight` is PyTorch's `[O, I]` (a 1x1 conv's `[O, I, 1]` has the same memory); `bias` is `[O]`
/// or nil. `x` rows are `ldx` floats apart (≥ I), `y` rows `ldy` apart (≥ O). `Q == 0` does nothing.
@inlinable
public func linear(_ x: UnsafePointer<Float>, ldx: Int, rows: Int,
                   weight: Tensor, bias: Tensor?, inFeatures: Int, outFeatures: Int,
                   into y: UnsafeMutablePointer<Float>, ldy: Int) {
    guard rows > 0 else { return }
    var beta: Float = 0
    if let bias {
        for r in 0..<rows { (y + r * ldy).update(from: bias.pointer, count: outFeatures) }
        beta = 1
    }
    BLAS.sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures,
               a: x, lda: ldx, b: weight.pointer, ldb: inFeatures,
               beta: beta, c: y, ldc: ldy)
}

/// Plain triple-loop reference for `linear` (tests only; slow).
public func linearReference(_ x: [Float], rows: Int, weight: [Float], bias: [Float]?,
                            inFeatures: Int, outFeatures: Int) -> [Float] {
    var y = [Float](repeating: 0, count: rows * outFeatures)
    for r in 0..<rows {
        for o in 0..<outFeatures {
            var acc: Double = bias.map { Double($0[o]) } ?? 0
            for i in 0..<inFeatures { acc += Double(x[r * inFeatures + i]) * Double(weight[o * inFeatures + i]) }
            y[r * outFeatures + o] = Float(acc)
        }
    }
    return y
}
