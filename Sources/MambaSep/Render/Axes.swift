// Axis ticks and a vertical colour bar, shared by the figures.

import Foundation

// MARK: - Ticks

/// Tick values for an axis spanning `lo…hi`: multiples of the smallest step of the form
/// {1, 2, 5}·10^k that gives at most `maxTicks` ticks.
public func axisTicks(from lo: Double, to hi: Double, maxTicks: Int) -> [Double] {
    guard hi > lo, maxTicks > 0 else { return [lo] }
    var step = Foundation.pow(10, Foundation.floor(Foundation.log10((hi - lo) / Double(maxTicks))))
    for factor in [1.0, 2, 5, 10] {
        if (hi - lo) / (step * factor) <= Double(maxTicks) { step *= factor; break }
    }
    var ticks: [Double] = []
    var k = Foundation.ceil(lo / step - 1e-9)
    while k * step <= hi + 1e-9 * step {
        ticks.append((k * step * 1e9).rounded() / 1e9 + 0)    // + 0: no "-0"; rounding: 1.9, not 1.9000000000000001
        k += 1
    }
    return ticks
}

/// A tick label with as few decimals as the step needs ("0.5", "2", "1.25").
public func tickLabel(_ v: Double, step: Double) -> String {
    var decimals = 0
    while decimals < 4 && abs(step * Foundation.pow(10, Double(decimals)) - (step * Foundation.pow(10, Double(decimals))).rounded()) > 1e-6 {
        decimals += 1
    }
    return String(format: "%.\(decimals)f", v)
}

extension Canvas {
    /// Draws a vertical colour bar (viridis, top = 1) at (x, y) of `w × h` pixels with labelled
    /// ticks on its right from `lo` (bottom) to `hi` (top) and `title` above.
    func colorBar(x: Int, y: Int, width w: Int, height h: Int, lo: Double, hi: Double, title: String) {
        raster(x: x, y: y, width: w, height: h) { _, r in Viridis.pixel(1 - (Double(r) + 0.5) / Double(h)) }
        frame(x: Double(x), y: Double(y), width: Double(w), height: Double(h))
        let ticks = axisTicks(from: lo, to: hi, maxTicks: 6)
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        for v in ticks {
            let ty = Double(y) + (hi - v) / (hi - lo) * Double(h)
            line(Double(x + w), ty, Double(x + w + 4), ty)
            text(tickLabel(v, step: step), x: Double(x + w + 7), y: ty + 4, size: 11)
        }
        text(title, x: Double(x) + Double(w) / 2, y: Double(y) - 8, size: 11, align: .center)
    }
}
