// One task's share of a list of inputs, for job arrays (Slurm, Kubernetes indexed Jobs, GNU
// parallel): task K of N takes every N-th input starting at the K-th.

import Foundation

// MARK: - Shard

/// Task `index` of `count` (1-based): it takes the inputs at the 1-based list positions
/// p = index, index + count, index + 2·count, …, that is p ≡ index (mod count). The `count` tasks
/// 1/N … N/N together take every position exactly once. Positions are counted in the whole list,
/// so every task must be given the same list.
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    /// This task, 1…count.
    public let index: Int
    /// How many tasks share the list.
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw BatchError("--shard \(index)/\(count): N must be at least 1") }
        guard index >= 1 else {
            throw BatchError("--shard \(index)/\(count): K counts from 1: the tasks are 1/\(count) … \(count)/\(count)")
        }
        guard index <= count else {
            throw BatchError("--shard \(index)/\(count): K must be between 1 and \(count)")
        }
        self.index = index
        self.count = count
    }

    /// `K/N`.
    public var description: String { "\(index)/\(count)" }

    /// Whether the input at 1-based `position` of the list is this task's.
    public func contains(position: Int) -> Bool {
        position >= 1 && (position - index) % count == 0
    }

    /// This task's share of `items` (in list order), with each item's 1-based list position.
    public func select<T>(_ items: [T]) -> [(position: Int, item: T)] {
        stride(from: index - 1, to: items.count, by: count).map { ($0 + 1, items[$0]) }
    }

    // MARK: Parsing

    /// `K/N`, or `slurm` for the task of a Slurm job array whose variables are in `environment`.
    public static func parse(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Shard {
        if text.lowercased() == "slurm" { return try slurm(environment) }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = decimal(parts[0]), let n = decimal(parts[1]) else {
            throw BatchError("--shard \(text): give K/N (task K of N, counting from 1, e.g. 1/4) or slurm")
        }
        return try Shard(index: k, count: n)
    }

    /// A string of decimal digits as a number (no sign, no spaces; nil when it overflows).
    private static func decimal<S: StringProtocol>(_ s: S) -> Int? {
        guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(s)
    }

    /// The shard of a Slurm job-array task.
    ///
    /// Slurm gives every task of `sbatch --array=A-B[:S]` the variables SLURM_ARRAY_TASK_ID (this
    /// task's index), SLURM_ARRAY_TASK_MIN (A, the lowest index), SLURM_ARRAY_TASK_MAX (the
    /// highest), SLURM_ARRAY_TASK_STEP (S, 1 without one) and SLURM_ARRAY_TASK_COUNT (how many
    /// tasks). Indices need not start at 0 or 1 (`--array=0-9` and `--array=1-10` are both ten
    /// tasks), so K = (ID − MIN) / STEP + 1 and N = COUNT. An array whose indices are not evenly
    /// spaced (`--array=1,4,9`, or a resubmission of some of the tasks) gives no place in the list
    /// and is refused; use `K/N` then.
    public static func slurm(_ environment: [String: String]) throws -> Shard {
        func number(_ name: String, required: Bool) throws -> Int? {
            guard let raw = environment[name] else {
                if required {
                    throw BatchError("--shard slurm: \(name) is not set: this is not a task of a Slurm job array (sbatch --array=…); give --shard K/N otherwise")
                }
                return nil
            }
            guard let v = decimal(raw.trimmingCharacters(in: .whitespaces)) else {
                throw BatchError("--shard slurm: \(name)=\(raw) is not a whole number")
            }
            return v
        }
        let id = try number("SLURM_ARRAY_TASK_ID", required: true)!
        let count = try number("SLURM_ARRAY_TASK_COUNT", required: true)!
        let min = try number("SLURM_ARRAY_TASK_MIN", required: true)!
        let step = try number("SLURM_ARRAY_TASK_STEP", required: false) ?? 1
        guard count >= 1, step >= 1 else {
            throw BatchError("--shard slurm: SLURM_ARRAY_TASK_COUNT=\(count) and SLURM_ARRAY_TASK_STEP=\(step) must be at least 1")
        }
        let max = try number("SLURM_ARRAY_TASK_MAX", required: false) ?? (min + step * (count - 1))
        guard max == min + step * (count - 1) else {
            throw BatchError("--shard slurm: the job array's \(count) task IDs from \(min) to \(max) are not evenly spaced by \(step) (as with --array=1,4,9 or a resubmission of some tasks), so this task's share is unknown; give --shard K/N")
        }
        guard id >= min, id <= max, (id - min) % step == 0 else {
            throw BatchError("--shard slurm: SLURM_ARRAY_TASK_ID=\(id) is not one of the array's IDs \(min)-\(max):\(step)")
        }
        return try Shard(index: (id - min) / step + 1, count: count)
    }
}
