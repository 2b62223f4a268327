// Keeping speaker order consistent across windows: each new window's outputs are permuted to
// best match the previous window's outputs where the two overlap.
//
// Glossary: `C` speakers; the overlap is every sample two consecutive windows both estimated.

// MARK: - Alignment

/// Chooses the order of `next`'s signals that best continues `previous` over their overlap.
///
/// Returns `perm` such that `next[perm[c]]` continues `previous[c]`. The score is the summed
/// inner product `Σ_c ⟨previous[c], next[perm[c]]⟩` over the first `min` common samples, which is
/// equivalent to the smallest total squared difference (the norms do not depend on the order).
/// Ties (e.g. silence in the overlap) keep the identity order. The search is `Assignment.best`,
/// the same one the metrics use for permutation-invariant scoring.
public func bestPermutation(previous: [[Float]], next: [[Float]]) -> [Int] {
    let c = previous.count
    precondition(next.count == c, "speaker count mismatch")
    guard c > 1 else { return Array(0..<c) }
    // Correlation matrix corr[i][j] = ⟨previous[i], next[j]⟩.
    var corr = [[Double]](repeating: [Double](repeating: 0, count: c), count: c)
    for i in 0..<c {
        for j in 0..<c {
            let n = min(previous[i].count, next[j].count)
            var acc: Double = 0
            previous[i].withUnsafeBufferPointer { a in
                next[j].withUnsafeBufferPointer { b in
                    for k in 0..<n { acc += Double(a[k]) * Double(b[k]) }
                }
            }
            corr[i][j] = acc
        }
    }
    // Exhaustive up to 4 speakers, Hungarian beyond; exact ties keep the identity order.
    return (try? Assignment.best(corr)) ?? Array(0..<c)
}
