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
    } catch let e as ExitCode {
        throw e
    } catch let e as CLIFailure {
        e.lines.forEach { printError("error: \($0)") }
        throw ExitCode.failure
    } catch let e as DatasetError {
        e.lines.forEach { printError("error: \($0)") }
        throw ExitCode.failure
    } catch let e as AudioError {
        printError("error: \(e.description)")
        throw ExitCode.failure
    } catch let e as MetricsError {
        printError("error: \(e.description)")
        throw ExitCode.failure
    } catch {
        printError("error: \(error)")
        throw ExitCode.failure
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

// MARK: - Output folders and progress

/// Creates `path` if needed and checks that files can be created in it; returns the path.
func prepareOutputFolder(_ path: String) throws -> String {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: path, isDirectory: &isDir) {
        guard isDir.boolValue else { throw CLIFailure("output folder \(path) exists and is not a folder") }
    } else {
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw CLIFailure("cannot create output folder \(path): \((error as NSError).localizedDescription)")
        }
    }
    // access(2) is not enough under root or on read-only mounts: create and remove a probe file.
    let probe = (path as NSString).appendingPathComponent(".mambasep-write-test-\(getpid())")
    guard fm.createFile(atPath: probe, contents: Data()) else {
        throw CLIFailure("output folder \(path) is not writable")
    }
    try? fm.removeItem(atPath: probe)
    return path
}

/// A one-line progress bar on stderr, redrawn in place; silent when disabled.
final class ProgressBar {
    let label: String
    let enabled: Bool
    private var lastPercent = -1

    init(label: String, enabled: Bool) {
        self.label = label
        self.enabled = enabled
    }

    func update(_ fraction: Double) {
        guard enabled else { return }
        let pct = Int((min(max(fraction, 0), 1) * 100).rounded(.down))
        guard pct != lastPercent else { return }
        lastPercent = pct
        let width = 30
        let filled = pct * width / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r[\(bar)] \(String(format: "%3d", pct))% \(label)".utf8))
    }

    func done() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
