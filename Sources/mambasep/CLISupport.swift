import ArgumentParser
import Foundation
import MambaSep

// MARK: - Errors and output streams

/// A user-facing failure: each line goes to stderr as `error: <line>`, then the exit is 1.
struct CLIFailure: Error, CustomStringConvertible {
    let lines: [String]
    init(_ lines: [String]) { self.lines = lines }
    init(_ line: String) { self.lines = [line] }
    var description: String { lines.joined(separator: "\n") }
}

/// Flushes what `print` buffered; a failed write (a full disk, `> /dev/full`, a closed pipe) is an
/// error, so results that never arrived are not reported as success.
func flushStandardOutput() throws {
    if fflush(stdout) != 0 || ferror(stdout) != 0 {
        let why = String(cString: strerror(errno))
        clearerr(stdout)
        throw CLIFailure("cannot write to standard output: \(why)")
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Whether standard error is a terminal (progress lines are shown only then).
var stderrIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }

/// Runs `body`, turning library errors into `error: …` lines on stderr and exit code 1.
///
/// Known error types (`AudioError`, `MetricsError`, `DatasetError`, `CLIFailure`) print their
/// own one-line descriptions; `ExitCode` and ArgumentParser errors pass through unchanged.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
        try flushStandardOutput()
    } catch let e as ExitCode {
        throw e
    } catch {
        errorLines(error).forEach { printError("error: \($0)") }
        throw ExitCode.failure
    }
}

/// The one-line messages of an error, as `reportingErrors` prints them (without `error: `).
func errorLines(_ error: Error) -> [String] {
    switch error {
    case let e as CLIFailure: return e.lines
    case let e as DatasetError: return e.lines
    case let e as AudioError: return [e.description]
    case let e as MetricsError: return [e.description]
    default: return ["\(error)"]
    }
}

// MARK: - Shared options

/// `--model` and `--threads`, shared by the commands that run the separation model.
struct EngineOptions: ParsableArguments {
    @Option(help: "Model: a bundled model name or a path to a .safetensors file.")
    var model: String?

    @Option(name: .customLong("threads"), help: "Worker threads (default: all processors).")
    var threadsOption: Int?

    /// Worker threads: `--threads`, or every processor.
    var threads: Int { threadsOption ?? ProcessInfo.processInfo.activeProcessorCount }

    func validate() throws {
        if threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256") }
    }
}

// MARK: - Formatting

/// A number with `digits` decimals, for tables.
func fixed(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }

/// Left-aligned text columns separated by two spaces; numbers are right-aligned.
func renderTable(_ rows: [[String]], rightAligned: Set<Int> = []) -> String {
    guard let width = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: width)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    return rows.map { r in
        r.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return rightAligned.contains(i) ? pad + c : c + pad
        }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }.joined(separator: "\n")
}

/// A CSV field, quoted when it holds a comma, quote or newline.
func csvField(_ s: String) -> String {
    if s.contains(",") || s.contains("\"") || s.contains("\n") {
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return s
}

/// JSON text of an `Encodable` value, keys sorted, no escaped slashes.
func jsonText<T: Encodable>(_ value: T) throws -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try enc.encode(value), as: UTF8.self)
}

// MARK: - Output folders and protected files

/// An output folder made ready for a run: created if missing (with its parents), and checked to
/// accept new files. The folders it created are remembered: `removeIfUnused()` takes them away
/// again when the run fails before writing anything, and an interrupted run (SIGINT/SIGTERM)
/// removes them too when they are still empty.
final class OutputFolder {
    let path: String
    /// Folders this run created, outermost first.
    private(set) var created: [String] = []
    private var tokens: [InterruptCleanup.Token?] = []

    init(_ path: String) throws {
        guard !path.isEmpty else { throw CLIFailure("the output folder is an empty name; give a folder, e.g. -o .") }
        self.path = path
        let fm = FileManager.default
        // The missing folders, deepest last; an existing non-folder on the way is an error.
        var missing: [String] = []
        var p = path
        while true {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: p, isDirectory: &isDir) {
                guard isDir.boolValue else {
                    throw CLIFailure(p == path ? "output folder \(path) exists and is not a folder"
                                               : "cannot create output folder \(path): \(p) is a file, not a folder")
                }
                break
            }
            missing.insert(p, at: 0)
            let parent = (p as NSString).deletingLastPathComponent
            if parent.isEmpty || parent == p { break }
            p = parent
        }
        for dir in missing {
            if mkdir(dir, 0o777) == 0 {
                created.append(dir)
                tokens.append(InterruptCleanup.add(folder: dir))
            } else if errno != EEXIST {      // EEXIST: made meanwhile by someone else, not ours to remove
                let why = String(cString: strerror(errno))
                removeIfUnused()
                throw CLIFailure("cannot create output folder \(path): \(dir): \(why)")
            }
        }
        // access(2) is not enough under root or on read-only mounts: create and remove a probe file.
        let probe = (path as NSString).appendingPathComponent(".mambasep-write-test-\(getpid())")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            let why = String(cString: strerror(errno))
            removeIfUnused()
            throw CLIFailure("output folder \(path) is not writable: \(why)")
        }
        close(fd)
        unlink(probe)
    }

    /// Removes the folders this run created, deepest first, where they are empty.
    func removeIfUnused() {
        for dir in created.reversed() { rmdir(dir) }
        forget()
    }

    /// Stops tracking the created folders (the run wrote into them).
    func forget() {
        tokens.forEach(InterruptCleanup.remove)
        tokens = []
        created = []
    }
}

/// The files a run reads and must never write over: inputs and the model, by resolved path and
/// by device and inode (so a hard link, a symbolic link or `./` spelling of an input counts).
struct ProtectedFiles {
    private struct FileID: Hashable { let device: UInt64; let inode: UInt64 }
    private var byID: [FileID: String] = [:]
    private var byPath: [String: String] = [:]

    /// Protects the file at `path`, shown to the user as `name` (default: the path).
    mutating func add(path: String, name: String? = nil) {
        var st = stat()
        if stat(path, &st) == 0 { byID[FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))] = name ?? path }
        if let r = Self.resolved(path) { byPath[r] = name ?? path }
    }

    /// Protects what an open descriptor reads (standard input redirected from a file).
    mutating func add(fd: Int32, name: String) {
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
            byID[FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))] = name
        }
    }

    /// The protected file (its name) that writing `path` would replace or truncate, if any.
    func owner(of path: String) -> String? {
        var st = stat()
        return (stat(path, &st) == 0 ? byID[FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))] : nil)
            ?? Self.resolved(path).flatMap { byPath[$0] }
    }

    /// Throws when writing `output` would replace or truncate a protected file.
    func check(output: String) throws {
        if let victim = owner(of: output) {
            let same = victim == output ? "" : " (\(victim))"
            throw CLIFailure("output \(output) is an input of this run\(same); refusing to overwrite it: choose another output folder")
        }
    }

    /// The absolute path with symbolic links resolved in its folder (the file need not exist).
    private static func resolved(_ path: String) -> String? {
        let abs = URL(fileURLWithPath: path).standardizedFileURL
        let dir = abs.deletingLastPathComponent().path
        guard let real = realpath(dir, nil) else { return nil }
        defer { free(real) }
        var r = (String(cString: real) as NSString).appendingPathComponent(abs.lastPathComponent)
        if let full = realpath(r, nil) { r = String(cString: full); free(full) }
        return r
    }
}
