// Running the built `mambasep` binary as a user would.

import Foundation
import XCTest
@testable import MambaSep

/// What one run of the built `mambasep` binary printed, and how it exited.
struct CLIResult {
    let status: Int32
    /// Standard output as bytes (`stdout` decodes it).
    let output: [UInt8]
    let stderr: String
    /// Whether the child was killed by a signal (`status` is then the signal's number).
    var signalled = false
    var stdout: String { String(decoding: output, as: UTF8.self) }
}

/// The built binary is missing (the test fails: `swift test` builds it).
struct BinaryNotBuilt: Error, CustomStringConvertible {
    let path: String
    var description: String { "mambasep binary not built at \(path)" }
}

/// Runs the built `mambasep` binary with `args`, `input` on stdin (none: stdin is empty).
///
/// stdout is read to its end, or only `stdoutLimit` bytes and then closed (the SIGPIPE case);
/// with `stdoutFile` the child writes there instead. stdin is fed and stderr drained on other
/// threads, so a child that fills one pipe while we wait on another cannot deadlock the test.
/// With `stdinFile` the child reads that file instead (as `< FILE` would give it); `whileRunning`
/// is called with the child once it has started (to signal it, for instance). `environment`
/// replaces the test's own environment for the child.
func runMambasep(_ args: [String], input: [UInt8] = [], in directory: URL? = nil,
                 stdoutLimit: Int? = nil, stdoutFile: FileHandle? = nil, stdinFile: FileHandle? = nil,
                 environment: [String: String]? = nil,
                 whileRunning: ((Process) -> Void)? = nil) throws -> CLIResult {
    let exe = Fixtures.productsDirectory.appendingPathComponent("mambasep")
    guard FileManager.default.isExecutableFile(atPath: exe.path) else { throw BinaryNotBuilt(path: exe.path) }
    signal(SIGPIPE, SIG_IGN)   // feeding a child that exits early must not kill the test runner
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    if let directory { p.currentDirectoryURL = directory }
    if let environment { p.environment = environment }
    let inPipe = Pipe(), out = Pipe(), err = Pipe()
    p.standardInput = stdinFile ?? inPipe
    p.standardOutput = stdoutFile ?? out
    p.standardError = err
    try p.run()
    if let whileRunning { DispatchQueue.global().async { whileRunning(p) } }
    // Feed stdin with plain write(2): EPIPE when the child quits is not fatal.
    let wfd = inPipe.fileHandleForWriting.fileDescriptor
    let feeder = Thread {
        var off = 0
        while off < input.count {
            let n = input.withUnsafeBytes { write(wfd, $0.baseAddress! + off, min(4096, input.count - off)) }
            if n <= 0 { break }
            off += n
        }
        try? inPipe.fileHandleForWriting.close()
    }
    feeder.start()
    let stderrData = readToEndInBackground(err.fileHandleForReading)
    var stdout: [UInt8] = []
    if stdoutFile != nil { try out.fileHandleForWriting.close() }   // reads below see EOF at once
    let rfd = out.fileHandleForReading.fileDescriptor
    var buf = [UInt8](repeating: 0, count: 65536)
    while stdoutLimit.map({ stdout.count < $0 }) ?? true {
        let n = buf.withUnsafeMutableBytes { read(rfd, $0.baseAddress!, $0.count) }
        if n <= 0 { break }
        stdout += buf[0..<n]
    }
    if stdoutLimit != nil { try out.fileHandleForReading.close() }
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus, output: stdout, stderr: String(decoding: stderrData(), as: UTF8.self),
                     signalled: p.terminationReason == .uncaughtSignal)
}

/// Asserts that a run succeeded and printed the paths of audio files with these names, each
/// `frames` long; returns each path with its header facts.
@discardableResult
func assertListedAudio(_ r: CLIResult, names: [String], frames: Int,
                       file: StaticString = #filePath, line: UInt = #line) throws -> [(path: String, info: AudioInfo)] {
    XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
    let listed = r.stdout.split(separator: "\n").map(String.init)
    XCTAssertEqual(listed.map { URL(fileURLWithPath: $0).lastPathComponent }, names, file: file, line: line)
    return try listed.map { path in
        let info = try AudioFile.info(path)
        XCTAssertEqual(info.frameCount, frames, path, file: file, line: line)
        return (path, info)
    }
}

/// Reads `handle` to its end on another thread (so that a child blocked on a full pipe cannot
/// stall the caller); the returned function waits for the end and gives the bytes.
func readToEndInBackground(_ handle: FileHandle) -> () -> Data {
    final class Box: @unchecked Sendable { var data = Data() }
    let box = Box()
    let drained = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        box.data = handle.readDataToEndOfFile()
        drained.signal()
    }
    return {
        drained.wait()
        return box.data
    }
}
