// A minimal fork-join loop for splitting independent work items across worker threads.

import Dispatch
import Foundation

/// Runs `body(item, worker)` for `item` in `0..<count`, on up to `workers` threads.
///
/// Items are handed out one at a time from a shared counter, so a worker slowed down by another
/// process on its CPU simply takes fewer items. Worker indices are `0..<workers`, so each worker
/// may own per-worker scratch indexed by `worker`. With one worker (or one item) everything runs
/// on the calling thread, in order. Items should be coarse (≥ 100 µs): taking one costs a lock.
@inlinable
public func parallelFor(_ count: Int, workers: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
    let w = max(1, min(workers, count))
    if w == 1 {
        for i in 0..<count { body(i, 0) }
        return
    }
    let next = WorkCounter()
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: w) { worker in
            while let i = next.take(below: count) { body(i, worker) }
        }
    }
}

/// A lock-protected counter handing out work item indices.
public final class WorkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    public init() {}

    /// The next index, or nil once `limit` is reached.
    public func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}
