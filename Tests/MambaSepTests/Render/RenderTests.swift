import Foundation
import XCTest
@testable import MambaSep

/// The colour map, axis ticks, the Cairo canvas's PNGs and files that appear only when complete.
final class RenderTests: XCTestCase {
    func testViridisEndsAndRisesInLuminance() {
        XCTAssertTrue(Viridis.rgb(0) == (0x44, 0x01, 0x54))
        XCTAssertTrue(Viridis.rgb(1) == (0xfd, 0xe7, 0x25))
        XCTAssertTrue(Viridis.rgb(0.5) == (0x21, 0x91, 0x8c))        // matplotlib's viridis(0.5) = #21918c
        XCTAssertTrue(Viridis.rgb(-3) == Viridis.rgb(0))
        XCTAssertTrue(Viridis.rgb(.nan) == Viridis.rgb(0))
        XCTAssertTrue(Viridis.rgb(7) == Viridis.rgb(1))
        // Perceptual order: every step up the map is lighter (steps of 1/64: finer ones differ
        // by less than 8-bit rounding).
        var last = -1.0
        for i in 0...64 {
            let c = Viridis.rgb(Double(i) / 64)
            let y = relativeLuminance(r: c.r, g: c.g, b: c.b)
            XCTAssertGreaterThan(y, last, "step \(i)")
            last = y
        }
        XCTAssertEqual(Viridis.pixel(1), 0xfffd_e725)
    }

    func testAxisTicks() {
        XCTAssertEqual(axisTicks(from: 0, to: 3.5, maxTicks: 10), [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5])
        XCTAssertEqual(axisTicks(from: 0, to: 4, maxTicks: 5), [0, 1, 2, 3, 4])
        XCTAssertEqual(axisTicks(from: 1.75, to: 1.999, maxTicks: 5), [1.75, 1.8, 1.85, 1.9, 1.95])
        XCTAssertEqual(axisTicks(from: -90, to: -10, maxTicks: 6), [-80, -60, -40, -20])
        XCTAssertEqual(tickLabel(1.5, step: 0.5), "1.5")
        XCTAssertEqual(tickLabel(2, step: 1), "2")
        XCTAssertEqual(tickLabel(1.85, step: 0.05), "1.85")
    }

    func testCanvasWritesAPNGOfItsSizeWithItsPixels() throws {
        let dir = try makeTempDir(self)
        let path = dir.appendingPathComponent("c.png").path
        let canvas = try Canvas(width: 37, height: 21)
        canvas.raster(x: 5, y: 4, width: 3, height: 2) { c, r in UInt32(0x10 * c + 0x1000 * r) }
        canvas.fill(x: 30, y: 10, width: 2, height: 2, color: 0xff0000)
        canvas.text("kHz", x: 2, y: 18, size: 10)
        try canvas.writePNG(to: path)
        let image = try RasterImage(pngPath: path)
        XCTAssertEqual(image.width, 37)
        XCTAssertEqual(image.height, 21)
        XCTAssertTrue(image.rgb(x: 0, y: 0) == (255, 255, 255))
        XCTAssertTrue(image.rgb(x: 7, y: 5) == (0, 0x10, 0x20))
        XCTAssertTrue(image.rgb(x: 31, y: 11) == (255, 0, 0))
        XCTAssertTrue((0..<37).contains { x in (12..<21).contains { y in image.rgb(x: x, y: y).r < 128 } }, "text was drawn")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["c.png"])
        XCTAssertThrowsError(try Canvas(width: 0, height: 5))
    }

    func testPendingFilesAppearTogetherOrNotAtAll() throws {
        let dir = try makeTempDir(self)
        let a = dir.appendingPathComponent("a.png").path, b = dir.appendingPathComponent("b.png").path
        let canvas = try Canvas(width: 4, height: 4)
        do {
            let files = PendingFiles()
            try files.add(a) { try canvas.writePNGFile($0) }
            XCTAssertThrowsError(try files.add(b) { _ in throw RenderError("disk full") })
            // Dropped without commit: nothing stays behind.
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        let files = PendingFiles()
        try files.add(a) { try canvas.writePNGFile($0) }
        try files.add(b) { try canvas.writePNGFile($0) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: a))
        try files.commit()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["a.png", "b.png"])
        // A folder that does not exist: a one-line error, no file.
        let missing = dir.appendingPathComponent("nope/c.png").path
        XCTAssertThrowsError(try canvas.writePNG(to: missing)) { e in
            XCTAssertTrue("\(e)".hasPrefix(dir.path), "\(e)")
            XCTAssertFalse("\(e)".contains("\n"))
        }
        XCTAssertThrowsError(try RasterImage(pngPath: missing))
    }
}
