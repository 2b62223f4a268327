// The hidden-attention picture: one square panel per layer, the forward scan's map below the
// diagonal and the backward scan's above (`AttentionMap.combined`), output step t downwards and
// input step s to the right, both in seconds; |mean α| in dB below each map's largest value.

import Foundation

// MARK: - Layout

/// Layout and drawing of a grid of attention maps (at most `columns` per row); the image is
/// `width × height` pixels.
public struct AttentionFigure {
    public let maps: [AttentionMap]
    /// Seconds added to every map's times (the excerpt's start in the file).
    public let offsetSeconds: Double
    public let title: String
    public static let rangeDecibels: Double = 50

    public static let panelSize = 250
    public static let columns = 4
    static let cellLeft = 56, cellRight = 14, cellTop = 26, cellBottom = 36
    static let header = 58, footer = 22, left = 26, right = 84

    public init(maps: [AttentionMap], offsetSeconds: Double, title: String) {
        precondition(!maps.isEmpty, "an attention figure needs at least one map")
        self.maps = maps
        self.offsetSeconds = offsetSeconds
        self.title = title
    }

    var columnCount: Int { min(maps.count, Self.columns) }
    var rowCount: Int { (maps.count + Self.columns - 1) / Self.columns }
    static var cellWidth: Int { cellLeft + panelSize + cellRight }
    static var cellHeight: Int { cellTop + panelSize + cellBottom }

    public var width: Int { Self.left + columnCount * Self.cellWidth + Self.right }
    public var height: Int { Self.header + rowCount * Self.cellHeight + Self.footer }

    /// The top-left pixel of map `i`'s panel.
    public func panelOrigin(_ i: Int) -> (x: Int, y: Int) {
        (Self.left + (i % Self.columns) * Self.cellWidth + Self.cellLeft,
         Self.header + (i / Self.columns) * Self.cellHeight + Self.cellTop)
    }

    // MARK: Drawing

    /// Draws the figure.
    public func render() throws -> Canvas {
        let canvas = try Canvas(width: width, height: height)
        let p = Self.panelSize
        let textWidth = Double(width - Self.left - 12)
        canvas.text(title, x: Double(Self.left), y: 22, size: 14, bold: true, maxWidth: textWidth)
        canvas.text("lower triangle: forward scan (s ≤ t); upper: backward scan (s ≥ t); "
                    + "|mean α| over the channels, dB below each map's maximum",
                    x: Double(Self.left), y: 42, size: 11, maxWidth: textWidth)
        for (i, map) in maps.enumerated() {
            let (x0, y0) = panelOrigin(i)
            let n = map.length
            let values = map.combined
            let peak = Double(values.map { abs($0) }.max() ?? 0)
            let index = (0..<p).map { min(n - 1, $0 * n / p) }
            canvas.raster(x: x0, y: y0, width: p, height: p) { c, r in
                let v = Double(abs(values[index[r] * n + index[c]]))
                let db = peak > 0 && v > 0 ? 20 * Foundation.log10(v / peak) : -.infinity
                return Viridis.pixel(1 + db / Self.rangeDecibels) & 0xffffff
            }
            canvas.frame(x: Double(x0), y: Double(y0), width: Double(p), height: Double(p))
            var label = "block \(map.layer.block) \(map.layer.path.rawValue)"
            if let chunk = map.chunk { label += ", chunk \(chunk)" }
            canvas.text(label, x: Double(x0), y: Double(y0) - 8, size: 12, bold: true)
            canvas.text("fwd", x: Double(x0) + 5, y: Double(y0 + p) - 6, size: 11, color: 0xffffff)
            canvas.text("bwd", x: Double(x0 + p) - 5, y: Double(y0) + 15, size: 11, align: .right, color: 0xffffff)
            // Ticks in seconds on both axes (position i covers pixels [i·p/n, (i+1)·p/n)).
            let t0 = map.time(0) + offsetSeconds, t1 = map.time(n - 1) + offsetSeconds
            let ticks = axisTicks(from: t0, to: t1, maxTicks: 5)
            let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
            for t in ticks {
                let pos = (t - t0) / max(map.stepSeconds, 1e-12)
                let px = (pos + 0.5) * Double(p) / Double(n)
                canvas.line(Double(x0) + px, Double(y0 + p), Double(x0) + px, Double(y0 + p) + 4)
                canvas.text(tickLabel(t, step: step), x: Double(x0) + px, y: Double(y0 + p) + 16, size: 10, align: .center)
                canvas.line(Double(x0) - 4, Double(y0) + px, Double(x0), Double(y0) + px)
                canvas.text(tickLabel(t, step: step), x: Double(x0) - 6, y: Double(y0) + px + 4, size: 10, align: .right)
            }
            canvas.text("input time s (s)", x: Double(x0) + Double(p) / 2, y: Double(y0 + p) + 31, size: 11, align: .center)
            canvas.text("output time t (s)", x: Double(x0) - 40, y: Double(y0) + Double(p) / 2, size: 11,
                        align: .center, vertical: true)
        }
        canvas.colorBar(x: width - Self.right + 22, y: Self.header + Self.cellTop, width: 14, height: p,
                        lo: -Self.rangeDecibels, hi: 0, title: "dB")
        return canvas
    }
}
