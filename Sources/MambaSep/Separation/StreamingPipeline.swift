// The `mambasep stream` loop as a library function, a thin driver over `SeparationStream`: a
// reader thread drains the input into a bounded queue while the main thread separates and
// writes, so a live source (a recorder writing into a pipe) is read on time even while a window
// is being computed.
//
// Glossary: `C` speakers, `F` frames (samples per channel).

import Foundation

// MARK: - Output

/// Where separated audio goes: one interleaved stream (channel k = speaker k) or one writer per
/// speaker (mono each).
public enum StreamingOutput {
    case interleaved(PCMStreamWriter)
    case perSpeaker([PCMStreamWriter])

    /// Writes one block per speaker (all the same length); empty blocks write nothing.
    func write(_ speakers: [[Float]]) throws {
        guard let n = speakers.first?.count, n > 0 else { return }
        switch self {
        case .interleaved(let w): try w.write(channels: speakers)
        case .perSpeaker(let ws): for (w, s) in zip(ws, speakers) { try w.write(channels: [s]) }
        }
    }

    /// Writes the headers of WAV outputs now (so readers see the stream format at once).
    func start() throws {
        switch self {
        case .interleaved(let w): try w.write(channels: [[Float]](repeating: [], count: w.format.channels))
        case .perSpeaker(let ws): for w in ws { try w.write(channels: [[]]) }
        }
    }

    /// Samples clipped so far by the writers (integer encodings).
    var clippedSamples: Int {
        switch self {
        case .interleaved(let w): return w.clippedSamples
        case .perSpeaker(let ws): return ws.reduce(0) { $0 + $1.clippedSamples }
        }
    }

    func finish() throws {
        switch self {
        case .interleaved(let w): try w.finish()
        case .perSpeaker(let ws): for w in ws { try w.finish() }
        }
    }
}

// MARK: - Report

/// What a streaming run did, for `--verbose` and tests.
public struct StreamingReport: Equatable, Sendable {
    /// Input frames read (whole frames only).
    public var framesIn = 0
    /// Bytes of an incomplete frame at the end of the input (dropped).
    public var partialFrameBytes = 0
    /// NaN/Inf input samples replaced by 0.
    public var nonFiniteSamples = 0
    /// Output samples beyond full scale clipped by integer output encodings.
    public var clippedSamples = 0
    /// Windows separated.
    public var windows = 0
    /// Wall-clock seconds from the first byte of audio to the end.
    public var wallSeconds = 0.0
    /// Seconds spent separating (model, resampling, alignment), excluding waiting for input.
    public var computeSeconds = 0.0
    /// The largest number of input frames waiting in the queue at once.
    public var maxQueuedFrames = 0
}

// MARK: - Pipeline

/// Reads `reader` to its end, separates with `stream` and writes every block to `output` as
/// soon as it is final; returns what happened.
///
/// Input is read on a separate thread into a queue of at most `maxQueuedSeconds` of audio (the
/// reader then waits: memory stays bounded when the input arrives faster than it is separated).
/// Multi-channel input is mixed to mono, or one channel is taken. A channel the reader does not
/// have or a reader at another rate than the stream's input is a `SeparationError`. Errors of
/// the reader (I/O) and the writer (`PCMStreamError.brokenPipe` when the reader of our output
/// went away) are thrown; what was separated before an error has been written.
public func runStreamingSeparation(reader: PCMStreamReader, stream: SeparationStream,
                                   output: StreamingOutput, channel: ChannelSelection = .mix,
                                   readFrames: Int = 1024, maxQueuedSeconds: Double = 20) throws -> StreamingReport {
    precondition(readFrames > 0)
    if case .channel(let k) = channel, !(0..<reader.format.channels).contains(k) {
        throw SeparationError.channelOutOfRange(channel: k, channels: reader.format.channels)
    }
    guard reader.format.sampleRate == stream.inputRate else {
        throw SeparationError.rateMismatch(stream: reader.format.sampleRate, separator: stream.inputRate)
    }
    try output.start()
    let queue = BlockQueue(capacity: max(readFrames, Int(maxQueuedSeconds * Double(reader.format.sampleRate))))
    let thread = Thread {
        do {
            while !queue.isCancelled {
                let block = try reader.readMono(maxFrames: readFrames, channel: channel)
                if block.isEmpty { break }
                queue.put(block)
            }
            queue.close(error: nil)
        } catch {
            queue.close(error: error)
        }
    }
    thread.stackSize = 1 << 20
    thread.start()
    defer { queue.cancel() }

    var report = StreamingReport()
    var started: Date? = nil
    while true {
        let (blocks, ended, error) = queue.takeAll()
        if started == nil { started = Date() }
        if !blocks.isEmpty {
            let t0 = Date()
            let x = blocks.count == 1 ? blocks[0] : Array(blocks.joined())
            report.framesIn += x.count
            let y = try stream.push(x)
            report.computeSeconds += Date().timeIntervalSince(t0)
            try output.write(y)
        }
        if let error { throw error }
        if ended { break }
    }
    let t0 = Date()
    let y = try stream.finish()
    report.computeSeconds += Date().timeIntervalSince(t0)
    try output.write(y)
    try output.finish()
    report.partialFrameBytes = queue.partialFrameBytes(of: reader)
    report.nonFiniteSamples = stream.nonFiniteSamples
    report.windows = stream.windowsProcessed
    report.clippedSamples = output.clippedSamples
    report.maxQueuedFrames = queue.maxQueued
    report.wallSeconds = Date().timeIntervalSince(started ?? Date())
    return report
}

// MARK: - Queue

/// A bounded FIFO of sample blocks between the reader thread and the separating thread.
final class BlockQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var blocks: [[Float]] = []
    private var queued = 0
    private let capacity: Int
    private var closed = false
    private var error: Error?
    private var cancelled = false
    private(set) var maxQueued = 0

    init(capacity: Int) { self.capacity = capacity }

    var isCancelled: Bool {
        condition.lock(); defer { condition.unlock() }
        return cancelled
    }

    /// Adds a block, waiting while the queue is full (unless cancelled).
    func put(_ block: [Float]) {
        condition.lock()
        while queued >= capacity && !cancelled { condition.wait() }
        if !cancelled {
            blocks.append(block)
            queued += block.count
            maxQueued = max(maxQueued, queued)
        }
        condition.broadcast()
        condition.unlock()
    }

    /// Marks the end of input (with the reader's error, if any).
    func close(error: Error?) {
        condition.lock()
        closed = true
        self.error = error
        condition.broadcast()
        condition.unlock()
    }

    /// Stops the reader thread at its next block (it may still be blocked in `read`).
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for at least one block or the end; returns every queued block.
    func takeAll() -> (blocks: [[Float]], ended: Bool, error: Error?) {
        condition.lock()
        while blocks.isEmpty && !closed { condition.wait() }
        let out = blocks
        blocks.removeAll()
        queued = 0
        let ended = closed
        let err = closed ? error : nil
        condition.broadcast()
        condition.unlock()
        return (out, ended, err)
    }

    /// The reader's partial-frame count, read once the reader thread has closed the queue.
    func partialFrameBytes(of reader: PCMStreamReader) -> Int {
        condition.lock(); defer { condition.unlock() }
        return closed ? reader.partialFrameBytes : 0
    }
}
