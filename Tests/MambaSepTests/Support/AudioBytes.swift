// Audio as bytes, for feeding readers and pipes: WAV headers and PCM encodings.

import Foundation

/// Little-endian bytes of a 16- and a 32-bit value.
func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }

/// Interleaved s16le bytes of `channels` (all the same length).
func s16Bytes(_ channels: [[Float]]) -> [UInt8] {
    var out: [UInt8] = []
    for f in 0..<channels[0].count {
        for c in channels.indices {
            let v = UInt16(bitPattern: Int16((channels[c][f] * 32767).rounded()))
            out += [UInt8(v & 0xFF), UInt8(v >> 8)]
        }
    }
    return out
}

/// A WAV header with the given `fmt ` body and `extra` chunks before `data`; the RIFF size is
/// the streaming 0xFFFFFFFF.
func wavHeader(fmt: [UInt8], extra: [UInt8] = [], dataSize: UInt32 = 0xFFFF_FFFF) -> [UInt8] {
    Array("RIFF".utf8) + le32(0xFFFF_FFFF) + Array("WAVE".utf8) + Array("fmt ".utf8) + le32(UInt32(fmt.count)) + fmt
        + extra + Array("data".utf8) + le32(dataSize)
}

/// A 16-byte `fmt ` body: format tag 1 (PCM) or 3 (float), channels, rate, bits per sample.
func fmtBody(tag: Int = 1, channels: Int, rate: Int, bits: Int = 16) -> [UInt8] {
    let align = channels * bits / 8
    return le16(tag) + le16(channels) + le32(UInt32(rate)) + le32(UInt32(rate * align)) + le16(align) + le16(bits)
}

/// A streaming s16 WAV header (unknown length unless `dataSize` says otherwise).
func s16WAVHeader(rate: Int, channels: Int = 1, dataSize: UInt32 = 0xFFFF_FFFF) -> [UInt8] {
    wavHeader(fmt: fmtBody(channels: channels, rate: rate), dataSize: dataSize)
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
