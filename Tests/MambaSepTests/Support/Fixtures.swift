// The repository's audio fixtures, temporary folders and test signals.

import Foundation
import XCTest
@testable import MambaSep

/// A fresh temporary folder, removed when the test ends.
func makeTempDir(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("mambasep-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// The write end of a pipe whose read end is closed: writes fail with EPIPE. SIGPIPE is ignored
/// and the descriptor closed when the test ends.
func pipeWithoutReader(_ test: XCTestCase) -> Int32 {
    var fds: [Int32] = [0, 0]
    XCTAssertEqual(pipe(&fds), 0)
    close(fds[0])
    let old = signal(SIGPIPE, SIG_IGN)
    test.addTeardownBlock { signal(SIGPIPE, old); close(fds[1]) }
    return fds[1]
}

/// A sine of `frequency` Hz, `amplitude`, `count` samples at `rate`.
func sine(_ frequency: Double, rate: Int, count: Int, amplitude: Double = 0.5, phase: Double = 0) -> [Float] {
    (0..<count).map { Float(amplitude * sin(2 * .pi * frequency * Double($0) / Double(rate) + phase)) }
}

/// Files under `audio-fixtures/` and the built products, found from this source file's place.
enum Fixtures {
    /// The repository root (this file is Tests/MambaSepTests/Support/Fixtures.swift).
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `audio-fixtures/`.
    static var audio: URL { repoRoot.appendingPathComponent("audio-fixtures") }

    /// A file under `audio-fixtures/`.
    static func path(_ relative: String) -> String { audio.appendingPathComponent(relative).path }

    /// The samples of a fixture (mono mix, its own rate).
    static func samples(_ relative: String) throws -> [Float] { try AudioFile.read(path(relative)).samples }

    /// The small Mamba parity model (random weights, N = 16) with its reference activations.
    static func smallMamba() throws -> DPMamba {
        try DPMamba(path: path("parity/small_mamba.safetensors"), ignoringPrefixes: ["io."])
    }

    /// The folder holding the built products (next to the test bundle).
    static var productsDirectory: URL {
        let candidates = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
            + Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("mambasep").path) }
            ?? candidates[0]
    }
}
