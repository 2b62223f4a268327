// In-memory safetensors files for tests: a builder, tiny configs and random weights in the
// exporter's naming.

import Foundation
import XCTest
@testable import MambaSep

/// Builds safetensors bytes; `raw` entries allow deliberately malformed headers in tests.
struct SafeTensorsBuilder {
    struct Item { var name: String; var shape: [Int]; var values: [Float]; var dtype = "F32" }
    var items: [Item] = []
    var metadata: [String: String] = [:]

    mutating func add(_ name: String, _ shape: [Int], _ values: [Float], dtype: String = "F32") {
        items.append(Item(name: name, shape: shape, values: values, dtype: dtype))
    }

    /// Serialises; `headerOverride` replaces the JSON header text verbatim.
    func build(headerOverride: String? = nil) -> Data {
        var body = Data()
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        for it in items {
            let begin = body.count
            for v in it.values {
                switch it.dtype {
                case "F16":
                    var bits = Float16(v).bitPattern.littleEndian
                    withUnsafeBytes(of: &bits) { body.append(contentsOf: $0) }
                case "BF16":
                    var bits = UInt16(truncatingIfNeeded: v.bitPattern >> 16).littleEndian
                    withUnsafeBytes(of: &bits) { body.append(contentsOf: $0) }
                default:
                    var bits = v.bitPattern.littleEndian
                    withUnsafeBytes(of: &bits) { body.append(contentsOf: $0) }
                }
            }
            header[it.name] = ["dtype": it.dtype, "shape": it.shape, "data_offsets": [begin, body.count]] as [String: Any]
        }
        let json = headerOverride.map { Data($0.utf8) }
            ?? (try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        var out = Data()
        var len = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(body)
        return out
    }
}

/// The config JSON of `config` (as the exporter writes it).
func configJSON(_ config: ModelConfig) -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    return String(data: try! enc.encode(config), encoding: .utf8)!
}

/// A tiny config for fast tests (N = 16, K = 8, 2 blocks).
func tinyConfig(intra: MixerKind = .mamba, inter: MixerKind = .mamba, speakers: Int = 2) -> ModelConfig {
    var c = ModelConfig.xs
    c.nFilters = 16; c.chunkSize = 8; c.hopSize = 4; c.numBlocks = 2
    c.dState = 4; c.dtRank = 1; c.s4dState = 8
    c.intraMixer = intra; c.interMixer = inter; c.numSpeakers = speakers
    return c
}

/// Every state-dict key and shape a config needs, in the exporter's naming.
func expectedShapes(_ c: ModelConfig) -> [(String, [Int])] {
    let n = c.nFilters, e = c.innerWidth, r = c.dtRank, m = c.dState, w = c.dConv, p = c.s4dPairs
    var out: [(String, [Int])] = [("encoder.conv.weight", [n, 1, c.kernelSize]),
                                  ("masker.norm.weight", [n]), ("masker.norm.bias", [n]),
                                  ("masker.conv_in.weight", [n, n, 1])]
    for i in 0..<c.numBlocks {
        for (path, kind) in [("intra", c.intraMixer), ("inter", c.interMixer)] {
            let pre = "masker.blocks.\(i).\(path)."
            out.append((pre + "norm_in.weight", [n]))
            switch kind {
            case .mamba:
                out.append((pre + "mixer.in_proj.weight", [2 * e, n]))
                for sfx in ["", "_b"] {
                    out.append((pre + "mixer.conv1d\(sfx).weight", [e, 1, w]))
                    out.append((pre + "mixer.conv1d\(sfx).bias", [e]))
                    out.append((pre + "mixer.x_proj\(sfx).weight", [r + 2 * m, e]))
                    out.append((pre + "mixer.dt_proj\(sfx).weight", [e, r]))
                    out.append((pre + "mixer.dt_proj\(sfx).bias", [e]))
                }
                out.append((pre + "mixer.A_log", [e, m])); out.append((pre + "mixer.A_b_log", [e, m]))
                out.append((pre + "mixer.D", [e])); out.append((pre + "mixer.D_b", [e]))
                out.append((pre + "mixer.out_proj.weight", [n, e]))
            case .s4d:
                for sfx in ["", "_b"] {
                    out.append((pre + "mixer.log_dt" + sfx, [n]))
                    out.append((pre + "mixer.log_A_real" + sfx, [n, p]))
                    out.append((pre + "mixer.A_imag" + sfx, [n, p]))
                    out.append((pre + "mixer.C" + sfx, [n, p, 2]))
                    out.append((pre + "mixer.D" + sfx, [n]))
                }
                out.append((pre + "mixer.out_proj.weight", [2 * n, n]))
                out.append((pre + "mixer.out_proj.bias", [2 * n]))
            }
            out.append((pre + "norm_out.weight", [n]))
        }
        out.append(("masker.blocks.\(i).intra_norm.weight", [n])); out.append(("masker.blocks.\(i).intra_norm.bias", [n]))
        out.append(("masker.blocks.\(i).inter_norm.weight", [n])); out.append(("masker.blocks.\(i).inter_norm.bias", [n]))
    }
    out += [("masker.prelu.weight", [1]),
            ("masker.conv_out.weight", [c.numSpeakers * n, n, 1]), ("masker.conv_out.bias", [c.numSpeakers * n]),
            ("masker.output.weight", [n, n, 1]), ("masker.output.bias", [n]),
            ("masker.output_gate.weight", [n, n, 1]), ("masker.output_gate.bias", [n]),
            ("masker.end_conv.weight", [n, n, 1]),
            ("decoder.conv.weight", [n, 1, c.kernelSize])]
    return out
}

/// A builder holding random weights for `config` (A_log, log_dt etc. in sensible ranges).
func randomModelBuilder(_ config: ModelConfig, seed: UInt64 = 1) -> SafeTensorsBuilder {
    var rng = SeededRandom(seed: seed)
    var b = SafeTensorsBuilder()
    b.metadata = ["config": configJSON(config), "name": "test-random"]
    for (name, shape) in expectedShapes(config) {
        let count = shape.reduce(1, *)
        let fanIn = shape.count >= 2 ? shape.dropFirst().reduce(1, *) : 1
        let scale = 1 / Float(fanIn).squareRoot()
        var v: [Float]
        if name.hasSuffix("A_log") || name.hasSuffix("A_b_log") {
            v = (0..<count).map { i in Float(Foundation.log(Double(i % shape[1] + 1))) }
        } else if name.contains("log_dt") {
            v = rng.floats(count, -6.9, -2.3)
        } else if name.contains("log_A_real") {
            v = [Float](repeating: Float(Foundation.log(0.5)), count: count)
        } else if name.contains("A_imag") {
            v = (0..<count).map { i in Float.pi * Float(i % shape[1]) }
        } else if name.hasSuffix("norm_in.weight") || name.hasSuffix("norm_out.weight") || name.hasSuffix("norm.weight") {
            v = rng.floats(count, 0.8, 1.2)
        } else if name.hasSuffix("prelu.weight") {
            v = [0.25]
        } else if name.hasSuffix("dt_proj.bias") || name.hasSuffix("dt_proj_b.bias") {
            v = rng.floats(count, -4, -2)
        } else {
            v = rng.floats(count, -scale, scale)
        }
        b.add(name, shape, v)
    }
    return b
}

/// A tiny random model whose encoder sums 1e38-sized input past Float's range (all its taps are
/// 1), so its output becomes NaN, as the bundled model's does on such input.
func overflowingModelBuilder() -> SafeTensorsBuilder {
    var b = randomModelBuilder(tinyConfig(), seed: 3)
    let i = b.items.firstIndex { $0.name == "encoder.conv.weight" }!
    b.items[i].values = [Float](repeating: 1, count: b.items[i].values.count)
    return b
}
