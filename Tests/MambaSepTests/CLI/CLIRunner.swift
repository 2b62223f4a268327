import Foundation
import XCTest

/// What one run of the built `mambasep` binary printed, and how it exited.
struct CLIResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs the built `mambasep` binary with `args` (no stdin), skipping the test when it isn't built.
///
/// stderr is drained on another thread while stdout is read, so a child that fills one pipe
/// while we wait on the other cannot deadlock the test.
func runMambasep(_ args: [String], in directory: URL? = nil) throws -> CLIResult {
    let exe = EvalCLITests.productsDirectory.appendingPathComponent("mambasep")
    guard FileManager.default.isExecutableFile(atPath: exe.path) else {
        throw XCTSkip("mambasep binary not built at \(exe.path)")
    }
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    if let directory { p.currentDirectoryURL = directory }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    var e = Data()
    let drained = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        e = err.fileHandleForReading.readDataToEndOfFile()
        drained.signal()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    drained.wait()
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                     stderr: String(decoding: e, as: UTF8.self))
}
