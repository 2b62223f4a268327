// Separating an audio file into one file per speaker: a thin driver over `SeparationStream`.

import Foundation

// MARK: - Files

/// Separates the audio file at `path` into `outputs` (one path per speaker), written at the
/// input's sample rate and exactly its length, reading, resampling and writing block by block.
///
/// Output files appear only when complete (temporary file + rename); on error none is left
/// behind; NaN/Inf input samples are an error (`AudioReader`). `progress` receives the fraction
/// of input read (0…1). Returns, per output, how many samples lay beyond full scale and were
/// clipped (integer formats such as the default 16-bit WAV; always 0 for `.wavFloat`).
@discardableResult
public func separateFile(_ path: String, outputs: [String], separator: WindowSeparator,
                         plan: WindowPlan = .standardOffline, format: AudioFileFormat = .wav16,
                         blockFrames: Int = 1 << 16, progress: ((Double) -> Void)? = nil) throws -> [Int] {
    guard outputs.count == separator.speakers else {
        throw SeparationError.outputCount(expected: separator.speakers, got: outputs.count)
    }
    let reader = try AudioReader(path: path)
    defer { reader.close() }
    let stream = try SeparationStream(separator: separator, inputRate: reader.sampleRate, plan: plan)
    let writers = try outputs.map { try AudioWriter(path: $0, sampleRate: reader.sampleRate, format: format) }
    do {
        func write(_ blocks: [[Float]]) throws {
            for (w, b) in zip(writers, blocks) where !b.isEmpty { try w.write(interleaved: b) }
        }
        while true {
            let block = try reader.read(maxFrames: blockFrames)
            if block.isEmpty { break }
            try write(stream.push(block))
            if reader.frameCount > 0 { progress?(Double(reader.framesRead) / Double(reader.frameCount)) }
        }
        try write(stream.finish())
        for w in writers { try w.finish() }
        progress?(1)
        return writers.map(\.clippedSamples)
    } catch {
        for w in writers { w.cancel() }
        throw error
    }
}
