// A minimal fork-join loop for splitting independent work items across worker threads.

import Dispatch

/// Runs `body(item, worker)` for `item` in `0..<count`, on up to `workers` threads.
///
/// Worker `w` handles items `w, w + workers, …` so each worker may own per-worker scratch indexed
/// by `w`. With one worker (or one item) everything runs on the calling thread, in order.
@inlinable
public func parallelFor(_ count: Int, workers: Int, _ body: (_ item: Int, _ worker: Int) -> Void) {
    let w = max(1, min(workers, count))
    if w == 1 {
        for i in 0..<count { body(i, 0) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: w) { worker in
            var i = worker
            while i < count { body(i, worker); i += w }
        }
    }
}
