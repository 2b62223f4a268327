import Foundation
import XCTest

// MARK: - Helpers shared by audio, metrics and CLI tests

/// A fresh temporary folder, removed when the test ends.
func makeTempDir(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("mambasep-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// A sine of `frequency` Hz, `amplitude`, `count` samples at `rate`.
func sine(_ frequency: Double, rate: Int, count: Int, amplitude: Double = 0.5, phase: Double = 0) -> [Float] {
    (0..<count).map { Float(amplitude * sin(2 * .pi * frequency * Double($0) / Double(rate) + phase)) }
}

/// Deterministic pseudo-random numbers (SplitMix64) so tests never flake.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A Gaussian sample (Box–Muller).
    mutating func gaussian() -> Double {
        let u1 = Double.random(in: Double.leastNonzeroMagnitude..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return sqrt(-2 * log(u1)) * cos(2 * .pi * u2)
    }
}

/// Bytes of a RIFF/WAVE file holding 32-bit float samples exactly as given (NaN allowed).
func floatWAVBytes(_ samples: [Float], rate: Int, channels: Int = 1) -> Data {
    var d = Data()
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    let dataBytes = UInt32(samples.count * 4)
    d.append(contentsOf: Array("RIFF".utf8)); u32(36 + dataBytes)
    d.append(contentsOf: Array("WAVE".utf8))
    d.append(contentsOf: Array("fmt ".utf8)); u32(16)
    u16(3); u16(UInt16(channels)); u32(UInt32(rate)); u32(UInt32(rate * channels * 4))
    u16(UInt16(channels * 4)); u16(32)
    d.append(contentsOf: Array("data".utf8)); u32(dataBytes)
    for s in samples { u32(s.bitPattern) }
    return d
}

/// Maximum absolute difference of two equal-length arrays.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for i in a.indices { m = max(m, abs(a[i] - b[i])) }
    return m
}
