import Foundation
import XCTest
@testable import MambaSep

/// The two pictures decode with their stated sizes, and what they show is where it should be.
final class FigureTests: XCTestCase {
    /// The brightest row (highest luminance under viridis) of image column `x` within `rows`.
    private func brightestRow(_ image: RasterImage, x: Int, rows: Range<Int>) -> Int {
        rows.max { a, b in
            let p = image.rgb(x: x, y: a), q = image.rgb(x: x, y: b)
            return relativeLuminance(r: p.r, g: p.g, b: p.b) < relativeLuminance(r: q.r, g: q.g, b: q.b)
        }!
    }

    func testPureTonesPeakOnTheirRowsInARenderedSpectrogram() throws {
        let dir = try makeTempDir(self)
        let rate = 8000, n = 16000
        let panels = [("1 kHz", sine(1000, rate: rate, count: n)), ("2.5 kHz", sine(2500, rate: rate, count: n, amplitude: 0.1))]
            .map { (title: $0.0, spectrogram: spectrogram($0.1, sampleRate: rate)) }
        let figure = SpectrogramFigure(panels: panels, startSeconds: 3, durationSeconds: 2, title: "tones")
        let narrow = SpectrogramFigure(panels: panels, startSeconds: 3, durationSeconds: 2, title: "tones", width: 640)
        XCTAssertEqual(narrow.panelHeight, 96)
        XCTAssertEqual(narrow.height, 52 + 2 * 96 + 30 + 46)
        let path = dir.appendingPathComponent("tones.png").path
        try figure.render().writePNG(to: path)
        let image = try RasterImage(pngPath: path)
        XCTAssertEqual(image.width, figure.width)
        XCTAssertEqual(image.height, figure.height)
        XCTAssertEqual(figure.height, 52 + 2 * 150 + 30 + 46)
        for (i, hz) in [(0, 1000.0), (1, 2500.0)] {
            let (x0, y0) = figure.panelOrigin(i)
            let expected = figure.y(ofFrequency: hz, panel: i)
            for x in [x0 + 50, x0 + figure.panelWidth / 2, x0 + figure.panelWidth - 50] {
                let row = brightestRow(image, x: x, rows: y0..<(y0 + figure.panelHeight))
                XCTAssertEqual(Double(row), expected, accuracy: 1, "panel \(i), column \(x)")
            }
        }
        // The scale's top is the loudest value rounded up to 10 dB (a −6 dBFS tone → 0).
        XCTAssertEqual(figure.topDecibels, 0)
    }

    func testAttentionFigureSizesAndDiagonal() throws {
        let dir = try makeTempDir(self)
        let n = 50
        // Forward: α = 1 on the diagonal, decaying below; backward: 0.
        var fwd = [Float](repeating: 0, count: n * n)
        for t in 0..<n { for s in 0...t { fwd[t * n + s] = Float(Foundation.pow(0.5, Double(t - s))) } }
        let map = AttentionMap(layer: MambaLayerID(block: 2, path: .inter), length: n, forward: fwd,
                               backward: [Float](repeating: 0, count: n * n), channels: 0...7, chunk: nil,
                               startSeconds: 0, stepSeconds: 0.125)
        for count in [1, 4, 5] {
            let figure = AttentionFigure(maps: Array(repeating: map, count: count), offsetSeconds: 1, title: "t")
            let path = dir.appendingPathComponent("a\(count).png").path
            try figure.render().writePNG(to: path)
            let image = try RasterImage(pngPath: path)
            XCTAssertEqual(image.width, figure.width)
            XCTAssertEqual(image.height, figure.height)
            XCTAssertEqual(figure.width, 26 + min(count, 4) * 320 + 84)
            XCTAssertEqual(figure.height, 58 + (count + 3) / 4 * 312 + 22)
        }
        let figure = AttentionFigure(maps: [map], offsetSeconds: 0, title: "t")
        let path = dir.appendingPathComponent("one.png").path
        try figure.render().writePNG(to: path)
        let image = try RasterImage(pngPath: path)
        let (x0, y0) = figure.panelOrigin(0)
        let p = AttentionFigure.panelSize
        // The diagonal is the maximum (yellow), the upper triangle is empty (the map's floor).
        XCTAssertTrue(image.rgb(x: x0 + p / 2, y: y0 + p / 2) == Viridis.rgb(1))
        XCTAssertTrue(image.rgb(x: x0 + p - 10, y: y0 + p / 2) == Viridis.rgb(0))
        // Five steps below the diagonal: 0.5⁵ → −30 dB of a 50 dB range.
        let five = 5 * p / n
        XCTAssertTrue(image.rgb(x: x0 + p / 2 + 1, y: y0 + p / 2 + five + 1) == Viridis.rgb(1 + 20 * Foundation.log10(1.0 / 32) / 50))
    }
}
