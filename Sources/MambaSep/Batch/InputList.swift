// Lists of input files for large collections: one path per line, read from a file or stdin.

import Foundation

// MARK: - BatchError

/// A problem with a batch's list, shard or report, as one line naming what is wrong.
public struct BatchError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

// MARK: - InputList

/// A list of input paths, one per line.
///
/// Blank lines and lines whose first non-blank character is `#` are ignored; white space around
/// a path (including the `\r` of Windows line ends) and a leading byte-order mark are removed. Paths are taken as written:
/// relative ones are relative to the current folder, as on the command line.
public enum InputList {
    /// The paths in `bytes`, the contents of the list `name` (named in errors). A line that is not
    /// valid UTF-8 or holds a NUL byte is an error naming its line number.
    public static func parse(_ bytes: [UInt8], name: String) throws -> [String] {
        var paths: [String] = []
        var lineNumber = 0
        // A byte-order mark (lists saved by some Windows editors) is not part of the first path.
        let bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.contains(0) { throw BatchError("\(name) line \(lineNumber): a NUL byte; give one path per line") }
            let text = String(decoding: line, as: UTF8.self)
            // Decoding replaces invalid sequences with U+FFFD: such a path would name another file.
            guard text.utf8.elementsEqual(line) else { throw BatchError("\(name) line \(lineNumber): not valid UTF-8") }
            let path = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if path.isEmpty || path.hasPrefix("#") { continue }
            paths.append(path)
        }
        return paths
    }

    /// The paths of the list file at `path`, or of standard input when `path` is `-`.
    public static func read(_ path: String) throws -> [String] {
        if path == "-" {
            return try parse(Array(FileHandle.standardInput.readDataToEndOfFile()), name: "<stdin>")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw BatchError("\(path): no such list file")
        }
        if isDir.boolValue { throw BatchError("\(path): is a folder, not a list of paths") }
        do {
            return try parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))), name: path)
        } catch let e as BatchError {
            throw e
        } catch {
            throw BatchError("\(path): cannot read the list: \(plainReason(error))")
        }
    }
}
