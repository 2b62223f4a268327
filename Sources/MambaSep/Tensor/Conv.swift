// Convolutions in channels-last layout: strided 1→N analysis conv, N→1 transposed conv, and the
// depthwise causal/anti-causal conv of Mamba.
//
// Glossary (docs/MODEL.md): `Tp` padded samples, `L` frames, `N` channels, `Kw` kernel size, `St`
// stride; for the depthwise conv `L'` steps, `E` channels, `W` its width.

// MARK: - Strided conv (1 → N)

/// `Conv1d(1, N, Kw, stride: St, bias: false)` on a mono signal, as im2col + GEMM.
///
/// `x` holds `Tp` samples with `Tp ≥ Kw` and `(Tp − Kw) % St == 0` (the caller pads); the result is
/// `[L, N]` with `L = (Tp − Kw)/St + 1`. `weight` is PyTorch's `[N, 1, Kw]`. `frames` is scratch.
@_optimize(speed)
public func conv1dMonoStrided(_ x: UnsafePointer<Float>, samples: Int, weight: Tensor,
                              channels: Int, kernel: Int, stride: Int,
                              frames: ScratchBuffer, into y: UnsafeMutablePointer<Float>) {
    let l = (samples - kernel) / stride + 1
    let fr = frames.reserve(l * kernel)               // [L, Kw]
    for f in 0..<l { (fr + f * kernel).update(from: x + f * stride, count: kernel) }
    BLAS.sgemm(transB: true, m: l, n: channels, k: kernel, a: fr, lda: kernel,
               b: weight.pointer, ldb: kernel, c: y, ldc: channels)
}

// MARK: - Transposed conv (N → 1)

/// `ConvTranspose1d(N, 1, Kw, stride: St, bias: false)`: each frame's `Kw` outputs are summed
/// into the signal at `frame·St` (overlap-add).
///
/// `x` is `[L, N]`; the output has `(L − 1)·St + Kw` samples (0 when `L == 0`) and is
/// overwritten. `weight` is PyTorch's `[N, 1, Kw]`. `frames` is scratch.
@_optimize(speed)
public func convTranspose1dMono(_ x: UnsafePointer<Float>, frames l: Int, weight: Tensor,
                                channels: Int, kernel: Int, stride: Int,
                                scratch: ScratchBuffer, into y: UnsafeMutablePointer<Float>) {
    guard l > 0 else { return }
    let fr = scratch.reserve(l * kernel)              // [L, Kw]
    BLAS.sgemm(m: l, n: kernel, k: channels, a: x, lda: channels,
               b: weight.pointer, ldb: kernel, c: fr, ldc: kernel)
    let total = (l - 1) * stride + kernel
    y.update(repeating: 0, count: total)
    for f in 0..<l {
        let dst = y + f * stride, src = fr + f * kernel
        for k in 0..<kernel { dst[k] += src[k] }
    }
}

// MARK: - Depthwise conv (Mamba)

/// Depthwise conv over time with bias, then SiLU, on one sequence `[len, E]` (rows `ldx` apart).
///
/// Causal (`reverse == false`): `y[t] = b + Σ_j w[j]·x[t − (W−1) + j]`, zeros before the start;
/// this is PyTorch's `conv1d(padding=W−1)` trimmed to `len`. Anti-causal (`reverse == true`):
/// the same conv applied to the time-reversed sequence, expressed in forward time:
/// `y[t] = b + Σ_j w[j]·x[t + (W−1) − j]`, zeros past the end. `weightT` holds the taps
/// transposed to `[W, E]` (PyTorch stores `[E, 1, W]`) so that channels are contiguous.
@inlinable
@_optimize(speed)
public func depthwiseConvSiLU(_ x: UnsafePointer<Float>, ldx: Int, len: Int,
                              weightT wT: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                              channels e: Int, width w: Int, reverse: Bool,
                              into y: UnsafeMutablePointer<Float>, ldy: Int) {
    let e8 = e & ~7
    for t in 0..<len {
        let yr = y + t * ldy
        // Taps j whose source step lies inside the sequence (no bounds checks in the loops below).
        let jLo = reverse ? max(0, t + w - len) : max(0, w - 1 - t)
        let jHi = w                                          // exclusive
        // Source row of tap j: causal t − (W−1) + j, anti-causal t + (W−1) − j.
        let base = reverse ? t + (w - 1) : t - (w - 1)
        let step = reverse ? -1 : 1
        var c = 0
        while c < e8 {
            var acc = bias.vec8(c)
            var j = jLo
            while j < jHi {
                acc = acc.addingProduct(x.vec8((base + step * j) * ldx + c), wT.vec8(j * e + c))
                j += 1
            }
            yr.setVec8(c, fastSiLU(acc))
            c += 8
        }
        while c < e {
            var acc = bias[c]
            for j in jLo..<jHi { acc += x[(base + step * j) * ldx + c] * wT[j * e + c] }
            yr[c] = scalar(fastSiLU, acc)
            c += 1
        }
    }
}
