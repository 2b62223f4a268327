// libFuzzer harnesses for the parsers that read untrusted bytes. Built by scripts/fuzz.sh with
// `swiftc -sanitize=fuzzer,address` together with the library's sources; the target is chosen by
// MAMBASEP_FUZZ_TARGET:
//
//   safetensors  SafeTensorsFile(data:) on the bytes, every tensor decoded, then DPMamba(file:)
//                (config JSON, shapes, finite weights) — seeds include real small models
//   wavstream    PCMStreamReader (WAV header + PCM, as `stream` reads stdin) fed in random-sized
//                reads (1 byte up), read to the end in random-sized blocks; raw mode too
//   audioreader  AudioReader on the bytes as a file (libsndfile's formats), read to the end
//
// Expected failures are thrown errors; a crash, a sanitizer report, a leak or a hang is a finding.

import Foundation

// MARK: - Entry

enum FuzzTarget: String { case safetensors, wavstream, audioreader }

let fuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["MAMBASEP_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("set MAMBASEP_FUZZ_TARGET to safetensors, wavstream or audioreader\n".utf8))
        exit(2)
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    switch fuzzTarget {
    case .safetensors: fuzzSafeTensors(bytes)
    case .wavstream: fuzzWAVStream(bytes)
    case .audioreader: fuzzAudioReader(bytes)
    }
    return 0
}

// MARK: - safetensors

func fuzzSafeTensors(_ bytes: [UInt8]) {
    guard let file = try? SafeTensorsFile(data: Data(bytes)) else { return }
    for name in file.entries.keys {
        if let t = try? file.tensor(name) { precondition(t.count == file.entries[name]!.count) }
    }
    _ = try? DPMamba(file: file)
}

// MARK: - WAV stream

/// Serves `bytes` in reads whose sizes come from a small generator seeded by the input itself.
final class ChoppySource: ByteSource {
    private let bytes: [UInt8]
    private var position = 0
    private var state: UInt64
    init(_ bytes: [UInt8], seed: UInt64) { self.bytes = bytes; state = seed | 1 }
    func next(_ bound: Int) -> Int {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Int(state % UInt64(bound))
    }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let want = 1 + next(64)
        let n = min(buffer.count, want, bytes.count - position)
        if n <= 0 { return 0 }
        bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + position, byteCount: n) }
        position += n
        return n
    }
}

func fuzzWAVStream(_ bytes: [UInt8]) {
    // Byte 0: mode and the read-size seed; the rest is the stream.
    guard let mode = bytes.first else { return }
    let body = Array(bytes.dropFirst())
    let source = ChoppySource(body, seed: UInt64(mode) &* 0x9E37_79B9_7F4A_7C15)
    let reader: PCMStreamReader
    do {
        if mode & 0x80 != 0 {
            // Raw: layout from the mode byte.
            let encodings: [PCMSampleFormat] = [.s16le, .s32le, .f32le]
            let format = PCMStreamFormat(sampleRate: 8000 + Int(mode & 0x0F) * 1000, channels: 1 + Int((mode >> 4) & 0x3),
                                         encoding: PCMEncoding(encodings[Int(mode) % 3]))
            reader = try PCMStreamReader(raw: source, format: format)
        } else {
            reader = try PCMStreamReader(wav: source)
        }
    } catch { return }
    let channels = reader.format.channels
    var total = 0
    while true {
        let maxFrames = 1 + source.next(300)
        let pick: ChannelSelection = mode & 0x40 != 0 ? .channel(Int(mode) % channels) : .mix
        guard let block = try? reader.readMono(maxFrames: maxFrames, channel: pick) else { return }
        if block.isEmpty { break }
        precondition(block.count <= maxFrames)
        total += block.count
    }
    precondition(total * reader.format.frameBytes <= body.count)
}

// MARK: - AudioReader

let scratchPath: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return (dir as NSString).appendingPathComponent("mambasep-fuzz-\(getpid()).audio")
}()

func fuzzAudioReader(_ bytes: [UInt8]) {
    let fd = open(scratchPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(scratchPath)") }
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
        if n <= 0 { break }
        off += n
    }
    close(fd)
    for pick in [ChannelSelection.mix, .channel(1)] {
        guard let r = try? AudioReader(path: scratchPath, channel: pick) else { continue }
        var frames = 0
        while let block = try? r.read(maxFrames: 4096), !block.isEmpty {
            precondition(block.allSatisfy(\.isFinite))
            frames += block.count
            if frames > 50_000_000 { break }
        }
        r.close()
    }
}
