// Keeping speaker order consistent across windows: each new window's outputs are permuted to
// best match the previous window's outputs where the two overlap.
//
// Glossary: `C` speakers, `O` overlap samples.

// MARK: - Permutations

/// All permutations of `0..<n` in lexicographic order (identity first); `n == 0` gives `[[]]`.
public func allPermutations(_ n: Int) -> [[Int]] {
    var result: [[Int]] = []
    var p = Array(0..<n)
    func rec(_ k: Int) {
        if k == n { result.append(p); return }
        for i in k..<n {
            p.swapAt(k, i)
            rec(k + 1)
            p.swapAt(k, i)
        }
    }
    rec(0)
    return result.sorted { $0.lexicographicallyPrecedes($1) }
}

// MARK: - Alignment

/// Chooses the order of `next`'s signals that best continues `previous` over their overlap.
///
/// Returns `perm` such that `next[perm[c]]` continues `previous[c]`. The score is the summed
/// inner product `Σ_c ⟨previous[c], next[perm[c]]⟩` over the first `min` common samples, which is
/// equivalent to the smallest total squared difference (the norms do not depend on the order).
/// Ties (e.g. silence in the overlap) keep the identity order. For more than 8 speakers the
/// search is greedy instead of exhaustive.
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
    if c <= 8 {
        var best = Array(0..<c)
        var bestScore = (0..<c).reduce(0.0) { $0 + corr[$1][$1] }
        for p in allPermutations(c) {
            let s = (0..<c).reduce(0.0) { $0 + corr[$1][p[$1]] }
            if s > bestScore + 1e-12 * abs(bestScore) + 1e-30 { best = p; bestScore = s }
        }
        return best
    }
    // Greedy: repeatedly take the largest remaining correlation.
    var perm = [Int](repeating: -1, count: c)
    var usedJ = Set<Int>()
    for _ in 0..<c {
        var bi = -1, bj = -1, bv = -Double.infinity
        for i in 0..<c where perm[i] < 0 {
            for j in 0..<c where !usedJ.contains(j) && corr[i][j] > bv { bi = i; bj = j; bv = corr[i][j] }
        }
        perm[bi] = bj
        usedJ.insert(bj)
    }
    return perm
}
