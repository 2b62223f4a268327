// The spectrogram picture: one panel per signal (the mixture, then each speaker) stacked on one
// time axis, frequency in kHz upwards, one shared dB colour scale with its bar on the right.

import Foundation

// MARK: - Layout

/// Layout and drawing of stacked spectrogram panels. Every panel has the same size; the image
/// is `width × height` pixels.
public struct SpectrogramFigure {
    public let panels: [(title: String, spectrogram: Spectrogram)]
    /// Seconds of the audio's start (the time axis reads start … start + duration).
    public let startSeconds: Double
    /// Seconds the panels span.
    public let durationSeconds: Double
    public let title: String
    /// Top and bottom of the colour scale in dB (a dynamic range of `rangeDecibels`).
    public let topDecibels: Double
    public static let rangeDecibels: Double = 80

    /// Image width in pixels (`widths` is the allowed range).
    public let width: Int
    public static let defaultWidth = 1000
    public static let widths = 400...4000
    /// Height of each panel: 15 % of the width.
    public var panelHeight: Int { Int((Double(width) * 0.15).rounded()) }
    static let left = 64, right = 96, top = 52, gap = 30, bottom = 46

    /// `panels` must share their sample rate, FFT size and hop; `durationSeconds` is the signal's length.
    public init(panels: [(title: String, spectrogram: Spectrogram)], startSeconds: Double, durationSeconds: Double,
                title: String, width: Int = SpectrogramFigure.defaultWidth) {
        precondition(!panels.isEmpty, "a spectrogram figure needs at least one panel")
        precondition(Self.widths.contains(width), "figure width \(width) outside \(Self.widths)")
        self.width = width
        self.panels = panels
        self.startSeconds = startSeconds
        self.durationSeconds = durationSeconds
        self.title = title
        let peak = panels.map { $0.spectrogram.decibels.max() ?? Spectrogram.floorDecibels }.max()!
        topDecibels = max(Foundation.ceil(Double(peak) / 10) * 10, Double(Spectrogram.floorDecibels) + Self.rangeDecibels)
    }

    public var height: Int { Self.top + panels.count * (panelHeight + Self.gap) - Self.gap + Self.bottom }
    /// Width of every panel's plot area.
    public var panelWidth: Int { width - Self.left - Self.right }

    /// The top-left pixel of panel `i`'s plot area.
    public func panelOrigin(_ i: Int) -> (x: Int, y: Int) { (Self.left, Self.top + i * (panelHeight + Self.gap)) }

    /// Row (pixel y, in image coordinates, fractional) of frequency `hz` in panel `i`: the centre
    /// of the pixel row that shows it.
    public func y(ofFrequency hz: Double, panel i: Int) -> Double {
        let nyquist = Double(panels[0].spectrogram.sampleRate) / 2
        return Double(panelOrigin(i).y) + (1 - hz / nyquist) * Double(panelHeight) - 0.5
    }

    // MARK: Drawing

    /// Draws the figure.
    public func render() throws -> Canvas {
        let canvas = try Canvas(width: width, height: height)
        let ph = panelHeight, pw = panelWidth
        let lo = topDecibels - Self.rangeDecibels
        canvas.text(title, x: Double(Self.left), y: 22, size: 14, bold: true, maxWidth: Double(panelWidth))
        let nyquist = Double(panels[0].spectrogram.sampleRate) / 2
        let fTicks = axisTicks(from: 0, to: nyquist / 1000, maxTicks: 5)
        let fStep = fTicks.count > 1 ? fTicks[1] - fTicks[0] : 1
        for (i, panel) in panels.enumerated() {
            let (x0, y0) = panelOrigin(i)
            let sp = panel.spectrogram
            // Each column shows the loudest of the frames whose centres fall in it; each row the
            // bin nearest its frequency.
            let framesPerSecond = Double(sp.sampleRate) / Double(sp.hop)
            let columnFrames = (0...pw).map { c in
                min(sp.frames, Int((Double(c) / Double(pw) * durationSeconds * framesPerSecond).rounded()))
            }
            let rowBins = (0..<ph).map { r in
                min(sp.bins - 1, Int(((1 - (Double(r) + 0.5) / Double(ph)) * Double(sp.bins - 1)).rounded()))
            }
            canvas.raster(x: x0, y: y0, width: pw, height: ph) { c, r in
                let f0 = min(columnFrames[c], max(sp.frames - 1, 0)), f1 = max(columnFrames[c + 1], f0 + 1)
                guard sp.frames > 0 else { return Viridis.pixel(0) & 0xffffff }
                var v = -Float.infinity
                for f in f0..<min(f1, sp.frames) { v = max(v, sp[frame: f, bin: rowBins[r]]) }
                return Viridis.pixel((Double(v) - lo) / Self.rangeDecibels) & 0xffffff
            }
            canvas.frame(x: Double(x0), y: Double(y0), width: Double(pw), height: Double(ph))
            canvas.text(panel.title, x: Double(x0), y: Double(y0) - 7, size: 12, bold: true)
            for f in fTicks {
                let ty = y(ofFrequency: f * 1000, panel: i) + 0.5
                canvas.line(Double(x0) - 4, ty, Double(x0), ty)
                canvas.text(tickLabel(f, step: fStep), x: Double(x0) - 7, y: ty + 4, size: 11, align: .right)
            }
            canvas.text("kHz", x: 18, y: Double(y0) + Double(ph) / 2, size: 11, align: .center, vertical: true)
        }
        // Time axis under the last panel.
        let (_, yLast) = panelOrigin(panels.count - 1)
        let axisY = Double(yLast + ph)
        let tTicks = axisTicks(from: startSeconds, to: startSeconds + durationSeconds, maxTicks: 10)
        let tStep = tTicks.count > 1 ? tTicks[1] - tTicks[0] : 1
        for t in tTicks {
            let tx = Double(Self.left) + (t - startSeconds) / durationSeconds * Double(pw)
            canvas.line(tx, axisY, tx, axisY + 4)
            canvas.text(tickLabel(t, step: tStep), x: tx, y: axisY + 17, size: 11, align: .center)
        }
        canvas.text("time (s)", x: Double(Self.left) + Double(pw) / 2, y: axisY + 36, size: 12, align: .center)
        // Colour bar beside the panels.
        let barTop = Self.top, barHeight = height - Self.top - Self.bottom
        canvas.colorBar(x: width - Self.right + 24, y: barTop, width: 14, height: barHeight,
                        lo: lo, hi: topDecibels, title: "dBFS")
        return canvas
    }
}
