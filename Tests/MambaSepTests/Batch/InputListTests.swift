import Foundation
import XCTest
@testable import MambaSep

final class InputListTests: XCTestCase {
    private func parse(_ text: String) throws -> [String] { try InputList.parse(Array(text.utf8), name: "list.txt") }

    func testOnePathPerLineWithoutCommentsBlankLinesOrSurroundingSpace() throws {
        let text = "# recordings of 2024\n\na.wav\n  b c.flac  \r\n\t# indented comment\nsub/#3.wav\nd.wav#x\n   \n/abs/e.ogg"
        XCTAssertEqual(try parse(text), ["a.wav", "b c.flac", "sub/#3.wav", "d.wav#x", "/abs/e.ogg"])
        XCTAssertEqual(try parse(""), [])
        XCTAssertEqual(try parse("# only\n\n#comments\n"), [])
        XCTAssertEqual(try InputList.parse([0xEF, 0xBB, 0xBF] + Array("x.wav\r\ny.wav\r\n".utf8), name: "bom.txt"), ["x.wav", "y.wav"])
        XCTAssertEqual(try parse("caf\u{E9}/\u{65E5}\u{672C}.wav\n"), ["caf\u{E9}/\u{65E5}\u{672C}.wav"])
    }

    func testBytesThatAreNoPathAreErrorsNamingTheLine() {
        XCTAssertThrowsError(try InputList.parse(Array("a.wav\ncaf".utf8) + [0xE9] + Array(".wav\n".utf8), name: "l.txt")) {
            XCTAssertEqual("\($0)", "l.txt line 2: not valid UTF-8")
        }
        XCTAssertThrowsError(try InputList.parse(Array("a.wav\nb.wav\n".utf8) + [0] + Array("c\n".utf8), name: "l.txt")) {
            XCTAssertEqual("\($0)", "l.txt line 3: a NUL byte; give one path per line")
        }
    }

    func testReadingAListFile() throws {
        let dir = try makeTempDir(self)
        let list = dir.appendingPathComponent("list.txt").path
        try "one.wav\n# two\nthree.wav\n".write(toFile: list, atomically: true, encoding: .utf8)
        XCTAssertEqual(try InputList.read(list), ["one.wav", "three.wav"])
        XCTAssertThrowsError(try InputList.read(dir.appendingPathComponent("none.txt").path)) {
            XCTAssertEqual("\($0)", "\(dir.path)/none.txt: no such list file")
        }
        XCTAssertThrowsError(try InputList.read(dir.path)) {
            XCTAssertEqual("\($0)", "\(dir.path): is a folder, not a list of paths")
        }
    }
}
