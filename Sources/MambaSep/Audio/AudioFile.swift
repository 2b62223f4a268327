import Foundation

// MARK: - MonoAudio

/// A mono signal with its sample rate.
public struct MonoAudio: Equatable, Sendable {
    public var samples: [Float]
    public var sampleRate: Int

    public init(samples: [Float], sampleRate: Int) {
        self.samples = samples
        self.sampleRate = sampleRate
    }

    /// Length in seconds.
    public var duration: Double { Double(samples.count) / Double(sampleRate) }
}

// MARK: - AudioFile

/// Whole-file helpers on top of `AudioReader`, `Resampler` and `AudioWriter`.
public enum AudioFile {
    /// Header facts of a file without decoding it (same errors as opening an `AudioReader`).
    public static func info(_ path: String) throws -> AudioInfo {
        let r = try AudioReader(path: path)
        defer { r.close() }
        return r.info
    }

    /// Reads a whole file as mono (channel mix by default), optionally resampled to `sampleRate`.
    ///
    /// Reading and resampling go block by block, so only the result is held in memory. Throws
    /// `AudioError` for every bad input `AudioReader` detects.
    public static func read(_ path: String, channel: ChannelSelection = .mix, sampleRate target: Int? = nil,
                            blockFrames: Int = 65536) throws -> MonoAudio {
        let reader = try AudioReader(path: path, channel: channel)
        defer { reader.close() }
        let rate = target ?? reader.sampleRate
        if rate == reader.sampleRate {
            return MonoAudio(samples: try reader.readAll(blockFrames: blockFrames), sampleRate: rate)
        }
        let rs = try Resampler(from: reader.sampleRate, to: rate)
        var out: [Float] = []
        out.reserveCapacity(rs.expectedOutputFrames(forInputFrames: reader.frameCount))
        while true {
            let block = try reader.read(maxFrames: blockFrames)
            if block.isEmpty { break }
            out.append(contentsOf: try rs.process(block))
        }
        out.append(contentsOf: try rs.flush())
        return MonoAudio(samples: out, sampleRate: rate)
    }

    /// Reads every channel of a file, planar (`[channel][frame]`), at its own rate.
    public static func readChannels(_ path: String, blockFrames: Int = 65536) throws -> (channels: [[Float]], sampleRate: Int) {
        let reader = try AudioReader(path: path)
        defer { reader.close() }
        let c = reader.channelCount
        var planar = [[Float]](repeating: [], count: c)
        while true {
            let block = try reader.readInterleaved(maxFrames: blockFrames)
            if block.isEmpty { break }
            let n = block.count / c
            for ch in 0..<c {
                planar[ch].reserveCapacity(planar[ch].count + n)
                for t in 0..<n { planar[ch].append(block[t * c + ch]) }
            }
        }
        return (planar, reader.sampleRate)
    }

    /// Writes a mono signal (see `writeAudio(_:to:sampleRate:format:)`).
    public static func write(_ audio: MonoAudio, to path: String, format: AudioFileFormat? = nil) throws {
        try writeAudio(audio.samples, to: path, sampleRate: audio.sampleRate, format: format)
    }
}
