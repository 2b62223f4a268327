// Running the built binary with its standard error on a pseudo-terminal, as in an interactive shell.

import Foundation
import XCTest

/// What a run on a terminal showed: its exit status, the bytes its stderr wrote to the terminal
/// (the terminal turns "\n" into "\r\n") and its standard output (a pipe).
struct TerminalRun {
    let status: Int32
    let terminal: String
    let stdout: String
}

/// A pseudo-terminal could not be opened.
struct NoTerminal: Error, CustomStringConvertible {
    let step: String
    var description: String { "cannot open a pseudo-terminal: \(step) failed (\(String(cString: strerror(errno))))" }
}

/// Runs the built `mambasep` with `args`, stderr on a new pseudo-terminal `columns` wide, stdin
/// empty and stdout a pipe.
func runMambasepOnTerminal(_ args: [String], in directory: URL? = nil, columns: UInt16 = 200) throws -> TerminalRun {
    let exe = Fixtures.productsDirectory.appendingPathComponent("mambasep")
    guard FileManager.default.isExecutableFile(atPath: exe.path) else { throw BinaryNotBuilt(path: exe.path) }
    let master = open("/dev/ptmx", O_RDWR | O_NOCTTY)      // posix_openpt
    guard master >= 0 else { throw NoTerminal(step: "open /dev/ptmx") }
    defer { close(master) }
    // grantpt, unlockpt and ptsname are in the C library but not in Swift's Glibc module.
    typealias IntCall = @convention(c) (Int32) -> Int32
    typealias NameCall = @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?
    let libc = dlopen(nil, RTLD_NOW)
    guard let g = dlsym(libc, "grantpt"), let u = dlsym(libc, "unlockpt"), let n = dlsym(libc, "ptsname") else {
        throw NoTerminal(step: "dlsym")
    }
    guard unsafeBitCast(g, to: IntCall.self)(master) == 0 else { throw NoTerminal(step: "grantpt") }
    guard unsafeBitCast(u, to: IntCall.self)(master) == 0 else { throw NoTerminal(step: "unlockpt") }
    guard let name = unsafeBitCast(n, to: NameCall.self)(master) else { throw NoTerminal(step: "ptsname") }
    let slave = open(name, O_RDWR | O_NOCTTY)
    guard slave >= 0 else { throw NoTerminal(step: "open \(String(cString: name))") }
    var size = winsize(ws_row: 24, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
    _ = ioctl(slave, UInt(TIOCSWINSZ), &size)

    let p = Process()
    p.executableURL = exe
    p.arguments = args
    if let directory { p.currentDirectoryURL = directory }
    let out = Pipe()
    p.standardOutput = out
    p.standardInput = FileHandle.nullDevice
    p.standardError = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
    do { try p.run() } catch { close(slave); throw error }
    close(slave)      // the child holds the terminal now: reads end (EIO) when it exits

    let stdoutData = readToEndInBackground(out.fileHandleForReading)
    var shown: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(master, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        shown += buf[0..<n]
    }
    p.waitUntilExit()
    return TerminalRun(status: p.terminationStatus, terminal: String(decoding: shown, as: UTF8.self),
                       stdout: String(decoding: stdoutData(), as: UTF8.self))
}
