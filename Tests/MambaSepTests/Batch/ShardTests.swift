import Foundation
import XCTest
@testable import MambaSep

final class ShardTests: XCTestCase {
    func testTheTasksOfAnArrayCoverEveryPositionExactlyOnce() throws {
        for n in 1...7 {
            for length in 0...20 {
                let items = Array(0..<length)
                var taken: [Int] = []
                for k in 1...n {
                    let share = try Shard(index: k, count: n).select(items)
                    // Positions k, k + n, ... in list order, each with its item.
                    XCTAssertEqual(share.map(\.position), Array(stride(from: k, through: length, by: n)))
                    XCTAssertEqual(share.map(\.item), share.map { $0.position - 1 })
                    for p in 1...max(length, 1) { XCTAssertEqual(try Shard(index: k, count: n).contains(position: p), (p - k) % n == 0) }
                    taken += share.map(\.item)
                }
                XCTAssertEqual(taken.sorted(), items, "N = \(n), \(length) items")
            }
        }
    }

    func testParsingKOverN() throws {
        XCTAssertEqual(try Shard.parse("1/1", environment: [:]), try Shard(index: 1, count: 1))
        XCTAssertEqual(try Shard.parse("3/8", environment: [:]).description, "3/8")
        for (text, message) in [("0/4", "--shard 0/4: K counts from 1: the tasks are 1/4 … 4/4"),
                                ("5/4", "--shard 5/4: K must be between 1 and 4"),
                                ("1/0", "--shard 1/0: N must be at least 1"),
                                ("4", "--shard 4: give K/N (task K of N, counting from 1, e.g. 1/4) or slurm"),
                                ("-1/4", "--shard -1/4: give K/N (task K of N, counting from 1, e.g. 1/4) or slurm"),
                                ("1/4/2", "--shard 1/4/2: give K/N (task K of N, counting from 1, e.g. 1/4) or slurm"),
                                (" 1/4", "--shard  1/4: give K/N (task K of N, counting from 1, e.g. 1/4) or slurm"),
                                ("1/99999999999999999999", "--shard 1/99999999999999999999: give K/N (task K of N, counting from 1, e.g. 1/4) or slurm")] {
            XCTAssertThrowsError(try Shard.parse(text, environment: [:]), text) { XCTAssertEqual("\($0)", message) }
        }
    }

    /// The variables Slurm gives task `id` of `sbatch --array=SPEC` (src/slurmctld/job_mgr.c,
    /// _create_job_array: COUNT = tasks, MIN/MAX = lowest/highest index, STEP = the number after
    /// the first ':' of SPEC, else 1).
    private func slurm(id: Int, ids: [Int], step: Int = 1) -> [String: String] {
        ["SLURM_ARRAY_TASK_ID": "\(id)", "SLURM_ARRAY_TASK_COUNT": "\(ids.count)", "SLURM_ARRAY_TASK_MIN": "\(ids.min()!)",
         "SLURM_ARRAY_TASK_MAX": "\(ids.max()!)", "SLURM_ARRAY_TASK_STEP": "\(step)", "SLURM_JOB_ID": "4242"]
    }

    func testSlurmArraysNumberedFromZeroOrOneOrWithAStepGiveTasks1ToN() throws {
        for (spec, ids, step) in [("0-9", Array(0...9), 1), ("1-10", Array(1...10), 1), ("5-7", [5, 6, 7], 1),
                                  ("0-15:4", [0, 4, 8, 12], 4), ("1-7:2", [1, 3, 5, 7], 2), ("3", [3], 1)] {
            let shards = try ids.map { try Shard.parse("slurm", environment: slurm(id: $0, ids: ids, step: step)) }
            XCTAssertEqual(shards.map(\.index), Array(1...ids.count), spec)
            XCTAssertEqual(Set(shards.map(\.count)), [ids.count], spec)
        }
        // MAX and STEP may be missing (older Slurm): a step of 1 is assumed.
        var env = slurm(id: 4, ids: [1, 2, 3, 4])
        env["SLURM_ARRAY_TASK_MAX"] = nil; env["SLURM_ARRAY_TASK_STEP"] = nil
        XCTAssertEqual(try Shard.parse("SLURM", environment: env), try Shard(index: 4, count: 4))
    }

    func testSlurmArraysWithoutAPlaceForEachTaskAreRefused() {
        let noArray = "--shard slurm: SLURM_ARRAY_TASK_ID is not set: this is not a task of a Slurm job array (sbatch --array=…); give --shard K/N otherwise"
        XCTAssertThrowsError(try Shard.parse("slurm", environment: ["SLURM_JOB_ID": "1"])) { XCTAssertEqual("\($0)", noArray) }
        var env = slurm(id: 2, ids: [0, 1, 2]); env["SLURM_ARRAY_TASK_MIN"] = nil
        XCTAssertThrowsError(try Shard.parse("slurm", environment: env)) {
            XCTAssertTrue("\($0)".hasPrefix("--shard slurm: SLURM_ARRAY_TASK_MIN is not set"), "\($0)")
        }
        env = slurm(id: 2, ids: [0, 1, 2]); env["SLURM_ARRAY_TASK_ID"] = "two"
        XCTAssertThrowsError(try Shard.parse("slurm", environment: env)) {
            XCTAssertEqual("\($0)", "--shard slurm: SLURM_ARRAY_TASK_ID=two is not a whole number")
        }
        // --array=1,3,5,7 (a list: STEP 1), --array=1-7:2,20, and a resubmission of tasks 3 and 7.
        for (ids, step, id) in [([1, 3, 5, 7], 1, 3), ([1, 3, 5, 7, 20], 2, 20), ([3, 7], 1, 7)] {
            XCTAssertThrowsError(try Shard.parse("slurm", environment: slurm(id: id, ids: ids, step: step)), "\(ids)") {
                XCTAssertTrue("\($0)".contains("are not evenly spaced by \(step)") && "\($0)".hasSuffix("give --shard K/N"), "\($0)")
            }
        }
        XCTAssertThrowsError(try Shard.parse("slurm", environment: slurm(id: 5, ids: [0, 4, 8], step: 4))) {
            XCTAssertEqual("\($0)", "--shard slurm: SLURM_ARRAY_TASK_ID=5 is not one of the array's IDs 0-8:4")
        }
    }
}
