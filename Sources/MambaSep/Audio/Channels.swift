// From several interleaved channels to the one signal the separator takes: the mix or one channel.
//
// Glossary: `F` frames (one sample of every channel), `Ch` channels.

// MARK: - Channel selection

/// Which channel of a multi-channel input a reader returns.
///
/// `.mix` averages all channels (sum / channel count), which is the identity for mono input.
/// `.channel(k)` picks channel `k`, counted from 0; a `k` outside `0..<channels` is an error when
/// the input is opened.
public enum ChannelSelection: Equatable, Sendable {
    case mix
    case channel(Int)
}

// MARK: - Mixdown

/// The selected channel of interleaved frames `[F, Ch]` as one signal `[F]`; mono input is
/// returned as it is. Both `AudioReader` (files) and `PCMStreamReader` (pipes) mix down here.
func mixdown(_ interleaved: [Float], channels c: Int, _ selection: ChannelSelection) -> [Float] {
    if c == 1 { return interleaved }
    let n = interleaved.count / c
    var out = [Float](repeating: 0, count: n)                  // [F]
    interleaved.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            switch selection {
            case .channel(let k):
                for t in 0..<n { dst[t] = src[t * c + k] }
            case .mix:
                let scale = 1 / Float(c)
                for t in 0..<n {
                    var s: Float = 0
                    for ch in 0..<c { s += src[t * c + ch] }
                    dst[t] = s * scale
                }
            }
        }
    }
    return out
}
