import Foundation

// MARK: - Best assignment

/// Maximum-weight assignment of rows to columns of a square score matrix.
///
/// `scores[i][j]` is the gain of giving row `i` column `j`; the result `p` has `p[i]` = the column
/// of row `i`, and maximises `Σ scores[i][p[i]]`. Up to `bruteForceLimit` rows every permutation
/// is tried (ties go to the first in lexicographic order, so the identity wins ties); beyond it
/// the Hungarian algorithm (Kuhn–Munkres with potentials, O(n³)) is used. An empty matrix gives
/// `[]`. The matrix must be square (`.countMismatch` otherwise) with finite entries (`.nonFinite`
/// otherwise).
public enum Assignment {
    /// Largest size solved by trying every permutation (4! = 24).
    public static let bruteForceLimit = 4

    public static func best(_ scores: [[Double]]) throws -> [Int] {
        let n = scores.count
        guard scores.allSatisfy({ $0.count == n }) else {
            throw MetricsError(.countMismatch, "assignment needs a square score matrix")
        }
        if n == 0 { return [] }
        // NaN compares false with everything: no permutation would ever be "best".
        guard scores.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
            throw MetricsError(.nonFinite, "assignment scores hold NaN or Inf")
        }
        return n <= bruteForceLimit ? bruteForce(scores) : hungarian(scores)
    }

    /// Every permutation of 0..<n in lexicographic order.
    public static func permutations(_ n: Int) -> [[Int]] {
        var result: [[Int]] = []
        var current: [Int] = []
        var used = [Bool](repeating: false, count: n)
        func extend() {
            if current.count == n { result.append(current); return }
            for j in 0..<n where !used[j] {
                used[j] = true; current.append(j)
                extend()
                current.removeLast(); used[j] = false
            }
        }
        extend()
        return result
    }

    static func total(_ scores: [[Double]], _ p: [Int]) -> Double {
        var s = 0.0
        for (i, j) in p.enumerated() { s += scores[i][j] }
        return s
    }

    /// Exhaustive search; exposed for tests that compare it with the Hungarian solver.
    public static func bruteForce(_ scores: [[Double]]) -> [Int] {
        var best: [Int] = []
        var bestScore = -Double.infinity
        for p in permutations(scores.count) {
            let s = total(scores, p)
            if s > bestScore { bestScore = s; best = p }
        }
        return best.count == scores.count ? best : Array(0..<scores.count)   // all NaN: identity
    }

    /// Hungarian algorithm on costs `-scores` (minimum-cost perfect matching).
    public static func hungarian(_ scores: [[Double]]) -> [Int] {
        let n = scores.count
        // 1-based arrays; index 0 is the virtual starting column.
        var u = [Double](repeating: 0, count: n + 1)   // row potentials
        var v = [Double](repeating: 0, count: n + 1)   // column potentials
        var match = [Int](repeating: 0, count: n + 1)  // match[j] = row assigned to column j
        var way = [Int](repeating: 0, count: n + 1)
        for i in 1...n {
            match[0] = i
            var j0 = 0
            var minv = [Double](repeating: .infinity, count: n + 1)
            var used = [Bool](repeating: false, count: n + 1)
            repeat {
                used[j0] = true
                let i0 = match[j0]
                var delta = Double.infinity
                var j1 = 0
                for j in 1...n where !used[j] {
                    let cur = -scores[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j] { minv[j] = cur; way[j] = j0 }
                    if minv[j] < delta { delta = minv[j]; j1 = j }
                }
                for j in 0...n {
                    if used[j] { u[match[j]] += delta; v[j] -= delta } else { minv[j] -= delta }
                }
                j0 = j1
            } while match[j0] != 0
            // Augment along the alternating path.
            repeat {
                let j1 = way[j0]
                match[j0] = match[j1]
                j0 = j1
            } while j0 != 0
        }
        var p = [Int](repeating: 0, count: n)
        for j in 1...n { p[match[j] - 1] = j - 1 }
        return p
    }
}
