import Foundation
import MambaSep

// MARK: - Progress line

/// `separate`'s progress line on a terminal (stderr), redrawn in place:
///
///     3/10 files (1 skipped) · 0.42 of 1.30 h audio · ETA 4m10s · 45% talk.wav
///
/// The ETA is the audio still to separate at the speed measured so far in this run (wall
/// seconds per second of audio, from the inputs' headers). Silent when disabled.
final class BatchProgress {
    let enabled: Bool
    /// Inputs of this run (its shard), skipped ones included.
    let totalFiles: Int
    /// Seconds of audio to separate (inputs whose headers were read and that were not skipped).
    let totalAudio: Double

    private(set) var filesDone = 0
    private(set) var skipped = 0
    private(set) var failed = 0
    /// Seconds of audio of the inputs ended so far (separated or failed).
    private var audioEnded = 0.0
    /// Seconds of audio separated by inputs that ended ok.
    private(set) var audioSeparated = 0.0
    /// Wall time spent separating (skipped inputs take none).
    private var busy = 0.0
    private var current: (name: String, seconds: Double, fraction: Double, started: Date)?
    private var lastDrawn = ""
    private var lastDrawTime = Date.distantPast

    init(totalFiles: Int, totalAudio: Double, enabled: Bool) {
        self.totalFiles = totalFiles
        self.totalAudio = totalAudio
        self.enabled = enabled
    }

    /// An input starts (its length in seconds, when known).
    func begin(_ name: String, seconds: Double?) {
        current = (name, seconds ?? 0, 0, Date())
        draw(force: true)
    }

    /// The current input is `fraction` (0…1) done.
    func update(_ fraction: Double) {
        guard current != nil else { return }
        current!.fraction = min(max(fraction, 0), 1)
        draw(force: false)
    }

    /// An input ended with `status` (skipped inputs need no `begin`).
    func end(_ status: BatchRecord.Status) {
        filesDone += 1
        switch status {
        case .skipped: skipped += 1
        case .failed: failed += 1
        case .ok: break
        }
        if let c = current {
            busy += Date().timeIntervalSince(c.started)
            audioEnded += c.seconds
            if status == .ok { audioSeparated += c.seconds }
        }
        current = nil
        // A rerun may skip thousands of inputs in a second: those redraw at most four times a second.
        draw(force: status != .skipped || filesDone == totalFiles)
    }

    /// Erases the line, so that another message can be printed; the next update redraws it.
    func clear() {
        guard enabled, !lastDrawn.isEmpty else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        lastDrawn = ""
    }

    /// Leaves the last state of the line on the terminal and ends it.
    func finish() {
        guard enabled else { return }
        draw(force: true)
        if !lastDrawn.isEmpty { FileHandle.standardError.write(Data("\n".utf8)) }
        lastDrawn = ""
    }

    // MARK: Text

    /// The line's text (without the carriage return and erase).
    func text(now: Date = Date()) -> String {
        var parts: [String] = []
        var files = "\(filesDone)/\(totalFiles) files"
        let notes = [skipped > 0 ? "\(skipped) skipped" : nil, failed > 0 ? "\(failed) failed" : nil].compactMap { $0 }
        if !notes.isEmpty { files += " (" + notes.joined(separator: ", ") + ")" }
        parts.append(files)
        let partial = current.map { $0.seconds * $0.fraction } ?? 0
        let ended = audioEnded + partial
        if totalAudio > 0 {
            parts.append("\(hours(audioSeparated + partial)) of \(hours(totalAudio)) h audio")
        }
        let elapsed = busy + (current.map { now.timeIntervalSince($0.started) } ?? 0)
        if filesDone == totalFiles {
            parts.append("took " + Self.duration(elapsed))
        } else if ended > 0, elapsed >= 1, totalAudio > 0 {
            parts.append("ETA " + Self.duration(max(totalAudio - ended, 0) * elapsed / ended))
        } else {
            parts.append("ETA …")
        }
        if let c = current {
            parts.append(String(format: "%3d%% ", Int(c.fraction * 100)) + c.name)
        }
        return parts.joined(separator: " · ")
    }

    private func hours(_ seconds: Double) -> String { String(format: "%.2f", seconds / 3600) }

    /// `0.4s`, `45s`, `12m05s`, `3h07m`.
    static func duration(_ s: Double) -> String {
        if s < 9.95 { return String(format: "%.1fs", max(s, 0)) }
        let t = Int(s.rounded())
        if t < 60 { return "\(t)s" }
        if t < 3600 { return String(format: "%dm%02ds", t / 60, t % 60) }
        return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60)
    }

    private func draw(force: Bool) {
        guard enabled else { return }
        let now = Date()
        if !force && now.timeIntervalSince(lastDrawTime) < 0.25 { return }
        var line = text(now: now)
        let width = Self.terminalWidth()
        if line.count >= width { line = String(line.prefix(max(width - 2, 10))) + "…" }
        guard line != lastDrawn else { return }
        lastDrawn = line
        lastDrawTime = now
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
    }

    /// Columns of the terminal on stderr (80 when unknown).
    private static func terminalWidth() -> Int {
        var ws = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 { return Int(ws.ws_col) }
        return 80
    }
}
