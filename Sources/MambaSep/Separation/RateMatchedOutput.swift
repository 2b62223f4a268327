// Separated blocks back at the input rate, released so the total length equals the input's.
//
// Glossary: `C` speakers.

import Foundation

// MARK: - Output at the input rate

/// Brings separated model-rate blocks back to the input rate and releases them so that the total
/// output length equals the input length exactly (`SeparationStream`'s last stage).
///
/// While input is still arriving, what has been resampled is released, never more than came in;
/// at the end the remainder is released, zero-padded or cut to the input length.
struct RateMatchedOutput {
    let speakers: Int
    private let resamplers: [Resampler]?
    /// Per-speaker output not yet released (the speakers stay in step).
    private(set) var held: [[Float]]
    /// Samples released per speaker (input rate).
    private(set) var samplesOut = 0

    init(speakers: Int, modelRate: Int, inputRate: Int, lowLatency: Bool) throws {
        self.speakers = speakers
        resamplers = modelRate == inputRate ? nil : try (0..<speakers).map { _ in
            try Resampler(from: modelRate, to: inputRate, lowLatency: lowLatency)
        }
        held = [[Float]](repeating: [], count: speakers)
    }

    /// Samples held per speaker, summed over speakers.
    var heldSamples: Int { held.reduce(0) { $0 + $1.count } }

    /// Takes model-rate blocks (one per speaker); returns what can be released at the input rate.
    mutating func deliver(_ modelRateBlocks: [[Float]], samplesIn: Int, last: Bool) throws -> [[Float]] {
        var blocks = modelRateBlocks
        if let rs = resamplers {
            for c in 0..<speakers {
                blocks[c] = try rs[c].process(blocks[c])
                if last { blocks[c] += try rs[c].flush() }
            }
        }
        for c in 0..<speakers { held[c] += blocks[c] }
        let release: Int
        if last {
            release = samplesIn - samplesOut
            for c in 0..<speakers where held[c].count < release {
                held[c] += [Float](repeating: 0, count: release - held[c].count)
            }
        } else {
            let available = held.map(\.count).min() ?? 0
            release = min(available, samplesIn - samplesOut)
        }
        var out = [[Float]](repeating: [], count: speakers)
        guard release > 0 else { return out }
        for c in 0..<speakers {
            out[c] = Array(held[c][0..<release])
            held[c].removeFirst(release)
        }
        samplesOut += release
        if last { held = [[Float]](repeating: [], count: speakers) }
        return out
    }
}
