// Folders and JSON-lines reports of batch runs, read back for comparison.

import Foundation
import XCTest
@testable import MambaSep

/// Every file under `folder` (hidden ones included), by path relative to it, with its bytes.
func folderContents(_ folder: URL) throws -> [String: Data] {
    var files: [String: Data] = [:]
    guard let e = FileManager.default.enumerator(atPath: folder.path) else { return files }
    while let name = e.nextObject() as? String {
        let url = folder.appendingPathComponent(name)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue {
            files[name] = try Data(contentsOf: url)
        }
    }
    return files
}

/// The objects of a JSON-lines file, one per line; a line that is not one JSON object fails the
/// test (and is left out).
func jsonLines(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    XCTAssertTrue(text.isEmpty || text.hasSuffix("\n"), "\(path) does not end with a newline", file: file, line: line)
    return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated().compactMap { i, l in
        let obj = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
        XCTAssertNotNil(obj, "\(path) line \(i + 1) is not a JSON object: \(l)", file: file, line: line)
        return obj
    }
}

/// Whether python3 reads every line of `path` as a JSON object (nil when there is no python3).
func python3ReadsJSONLines(_ path: String) throws -> Bool? {
    guard let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: FileManager.default.isExecutableFile) else { return nil }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = ["-c", "import json, sys\nfor l in open(sys.argv[1], encoding='utf-8'): assert isinstance(json.loads(l), dict)", path]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus == 0
}
