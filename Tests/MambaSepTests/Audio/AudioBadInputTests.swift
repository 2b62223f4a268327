import Foundation
import XCTest
@testable import MambaSep

/// Every bad input gives an `AudioError` of the right kind that names the file.
final class AudioBadInputTests: XCTestCase {
    private func assertAudioError(_ path: String, _ kind: AudioError.Kind, _ words: String,
                                  file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try AudioFile.read(path)
            XCTFail("expected \(kind) for \(path)", file: file, line: line)
        } catch let e as AudioError {
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            XCTAssertEqual(e.path, path, file: file, line: line)
            XCTAssertTrue(e.description.hasPrefix(path + ": "), e.description, file: file, line: line)
            XCTAssertTrue(e.description.lowercased().contains(words), e.description, file: file, line: line)
        } catch {
            XCTFail("unexpected error type \(error)", file: file, line: line)
        }
    }

    func testMissingFile() throws {
        let dir = try makeTempDir(self)
        assertAudioError(dir.appendingPathComponent("none.wav").path, .missing, "no such file")
    }

    func testDirectory() throws {
        let dir = try makeTempDir(self)
        assertAudioError(dir.path, .isDirectory, "directory")
    }

    func testNotAudio() throws {
        let dir = try makeTempDir(self)
        let p = dir.appendingPathComponent("text.wav").path
        try Data("this is not audio at all, just some text\n".utf8).write(to: URL(fileURLWithPath: p))
        assertAudioError(p, .notAudio, "not a readable audio file")
    }

    func testEmptyFileAndHeaderOnly() throws {
        let dir = try makeTempDir(self)
        let p = dir.appendingPathComponent("empty.wav").path
        _ = FileManager.default.createFile(atPath: p, contents: Data())
        assertAudioError(p, .emptyFile, "empty")
        let h = dir.appendingPathComponent("header.wav").path
        try floatWAVBytes([], rate: 8000).write(to: URL(fileURLWithPath: h))
        assertAudioError(h, .noSamples, "no audio samples")
    }

    func testTruncatedWAV() throws {
        let dir = try makeTempDir(self)
        let p = dir.appendingPathComponent("t.wav").path
        try writeAudio(sine(440, rate: 8000, count: 8000), to: p, sampleRate: 8000)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: p))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: p))
        assertAudioError(p, .truncated, "truncated")
    }

    func testTruncatedFLAC() throws {
        let dir = try makeTempDir(self)
        let p = dir.appendingPathComponent("t.flac").path
        var rng = SeededRandom(seed: 7)
        let noise = (0..<16000).map { _ in Float(rng.gaussian() * 0.2) }
        try writeAudio(noise, to: p, sampleRate: 8000)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: p))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: p))
        assertAudioError(p, .truncated, "truncated")
    }

    func testNaNAndInfSamples() throws {
        let dir = try makeTempDir(self)
        for (name, bad) in [("nan.wav", Float.nan), ("inf.wav", Float.infinity)] {
            let p = dir.appendingPathComponent(name).path
            var x = [Float](repeating: 0.1, count: 100)
            x[42] = bad
            try floatWAVBytes(x, rate: 8000).write(to: URL(fileURLWithPath: p))
            assertAudioError(p, .nonFinite, "frame 42")
        }
    }

    func testBadResamplerRates() {
        XCTAssertThrowsError(try Resampler(from: 0, to: 8000))
        XCTAssertThrowsError(try Resampler(from: 8000, to: -1))
    }
}
