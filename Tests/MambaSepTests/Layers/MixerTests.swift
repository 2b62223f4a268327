import Foundation
import XCTest
@testable import MambaSep

/// BiMamba and BiS4D mixers against plain references built from docs/MODEL.md's pseudo-code.
final class MixerTests: XCTestCase {
    private func reader(_ config: ModelConfig, seed: UInt64) throws -> WeightReader {
        WeightReader(try SafeTensorsFile(data: randomModelBuilder(config, seed: seed).build()))
    }

    private func values(_ r: WeightReader, _ key: String) throws -> [Float] { try r.file.tensor(key).toArray() }

    /// Plain BiMamba on one sequence `h [T, N]`, following MODEL.md line by line (flip included).
    private func biMambaReference(_ r: WeightReader, prefix p: String, config c: ModelConfig, h: [Float], t: Int) throws -> [Float] {
        let n = c.nFilters, e = c.innerWidth, rank = c.dtRank, m = c.dState, w = c.dConv
        let xz = linearReference(h, rows: t, weight: try values(r, p + "in_proj.weight"), bias: nil, inFeatures: n, outFeatures: 2 * e)
        var x = [Float](), z = [Float]()
        for i in 0..<t {
            x += slice(xz, i * 2 * e, e)
            z += slice(xz, i * 2 * e + e, e)
        }
        func flip(_ v: [Float], _ width: Int) -> [Float] {
            var out: [Float] = []
            for i in (0..<t).reversed() { out += slice(v, i * width, width) }
            return out
        }
        var ys: [[Float]] = []
        for sfx in ["", "_b"] {
            let xin = sfx.isEmpty ? x : flip(x, e)
            let cw = try values(r, p + "conv1d\(sfx).weight"), cb = try values(r, p + "conv1d\(sfx).bias")
            var xc = [Float](repeating: 0, count: t * e)
            for i in 0..<t { for ch in 0..<e {
                var acc = Double(cb[ch])
                for j in 0..<w where i - (w - 1) + j >= 0 { acc += Double(cw[ch * w + j]) * Double(xin[(i - (w - 1) + j) * e + ch]) }
                xc[i * e + ch] = Float(acc / (1 + Foundation.exp(-acc)))
            } }
            let dbc = linearReference(xc, rows: t, weight: try values(r, p + "x_proj\(sfx).weight"), bias: nil, inFeatures: e, outFeatures: rank + 2 * m)
            var dt = [Float](), bm = [Float](), cm = [Float]()
            for i in 0..<t {
                let row = i * (rank + 2 * m)
                dt += slice(dbc, row, rank)
                bm += slice(dbc, row + rank, m)
                cm += slice(dbc, row + rank + m, m)
            }
            let pre = linearReference(dt, rows: t, weight: try values(r, p + "dt_proj\(sfx).weight"), bias: try values(r, p + "dt_proj\(sfx).bias"), inFeatures: rank, outFeatures: e)
            let delta = pre.map { v -> Float in v > 20 ? v : Float(Foundation.log1p(Foundation.exp(Double(v)))) }
            let aLog = try values(r, p + (sfx.isEmpty ? "A_log" : "A_b_log"))
            let a = aLog.map { -Foundation.exp($0) }
            let y = selectiveScanReference(x: xc, delta: delta, a: a, b: bm, c: cm, d: try values(r, p + (sfx.isEmpty ? "D" : "D_b")),
                                           length: t, channels: e, states: m, reverse: false)
            ys.append(sfx.isEmpty ? y : flip(y, e))
        }
        var g = [Float](repeating: 0, count: t * e)
        for i in 0..<(t * e) {
            let zi = Double(z[i])
            g[i] = Float((Double(ys[0][i]) + Double(ys[1][i])) / 2 * zi / (1 + Foundation.exp(-zi)))
        }
        return linearReference(g, rows: t, weight: try values(r, p + "out_proj.weight"), bias: nil, inFeatures: e, outFeatures: n)
    }

    func testBiMambaMatchesReferenceOnSeveralSequences() throws {
        let config = tinyConfig()
        let r = try reader(config, seed: 21)
        let prefix = "masker.blocks.0.intra.mixer."
        let mamba = try BiMambaWeights(r, prefix: prefix, config: config)
        let g = 3, t = 19, n = config.nFilters
        var rng = SeededRandom(seed: 22)
        let h = rng.floats(g * t * n, -2, 2)
        var out = [Float](repeating: 0, count: g * t * n)
        h.withUnsafeBufferPointer { hp in out.withUnsafeMutableBufferPointer {
            mamba.forward(hp.baseAddress!, sequences: g, length: t, config: config, scratch: MambaScratch(), into: $0.baseAddress!)
        } }
        for s in 0..<g {
            let ref = try biMambaReference(r, prefix: prefix, config: config, h: Array(h[(s * t * n)..<((s + 1) * t * n)]), t: t)
            XCTAssertLessThan(relativeL2Error(Array(out[(s * t * n)..<((s + 1) * t * n)]), ref), 5e-6, "sequence \(s)")
        }
    }

    // MARK: S4D

    func testS4DKernelConvolutionEqualsRecurrence() throws {
        let config = tinyConfig(intra: .s4d)
        let r = try reader(config, seed: 32)
        let w = try BiS4DWeights(r, prefix: "masker.blocks.0.intra.mixer.", config: config)
        let n = config.nFilters, p = config.s4dPairs, t = 40
        var rng = SeededRandom(seed: 33)
        let h = rng.floats(t * n)                                                           // [T, N]
        var hc = [Float](repeating: 0, count: n * t)
        for c in 0..<n { for i in 0..<t { hc[c * t + i] = h[i * n + c] } }
        for (dir, anti) in [(w.forward, false), (w.backward, true)] {
            let k = dir.kernel(channels: n, pairs: p, length: t)
            let conv = directConvolutionReference(hc, kernel: k, channels: n, length: t, antiCausal: anti)
            let rec = s4dRecurrenceReference(dir, h: h, length: t, channels: n, pairs: p, reverse: anti)
            var viaConv = [Float](repeating: 0, count: t * n)
            for c in 0..<n { for i in 0..<t { viaConv[i * n + c] = conv[c * t + i] + dir.d.pointer[c] * h[i * n + c] } }
            XCTAssertLessThan(relativeL2Error(viaConv, rec), 1e-5, "anti-causal \(anti)")
        }
    }

    func testBiS4DMatchesRecurrenceReferenceAndCachesKernels() throws {
        let config = tinyConfig(intra: .s4d)
        let r = try reader(config, seed: 34)
        let prefix = "masker.blocks.0.intra.mixer."
        let s4d = try BiS4DWeights(r, prefix: prefix, config: config)
        let n = config.nFilters, g = 2, t = 27
        var rng = SeededRandom(seed: 35)
        let h = rng.floats(g * t * n, -2, 2)
        var out = [Float](repeating: 0, count: g * t * n)
        let scratch = S4DScratch()
        for _ in 0..<2 {
            h.withUnsafeBufferPointer { hp in out.withUnsafeMutableBufferPointer {
                s4d.forward(hp.baseAddress!, sequences: g, length: t, config: config, scratch: scratch, into: $0.baseAddress!)
            } }
        }
        XCTAssertEqual(s4d.kernels.count, 1)
        let wOut = try values(r, prefix + "out_proj.weight"), bOut = try values(r, prefix + "out_proj.bias")
        for s in 0..<g {
            let hs = Array(h[(s * t * n)..<((s + 1) * t * n)])
            let yf = s4dRecurrenceReference(s4d.forward, h: hs, length: t, channels: n, pairs: config.s4dPairs, reverse: false)
            let yb = s4dRecurrenceReference(s4d.backward, h: hs, length: t, channels: n, pairs: config.s4dPairs, reverse: true)
            let gelu = zip(yf, yb).map { a, b -> Float in
                let x = Double(a) + Double(b)
                return Float(x * 0.5 * (1 + Foundation.erf(x / 2.0.squareRoot())))
            }
            let proj = linearReference(gelu, rows: t, weight: wOut, bias: bOut, inFeatures: n, outFeatures: 2 * n)
            var ref = [Float](repeating: 0, count: t * n)
            for i in 0..<t { for c in 0..<n {
                let gate = 1 / (1 + Foundation.exp(-Double(proj[i * 2 * n + n + c])))
                ref[i * n + c] = Float(Double(proj[i * 2 * n + c]) * gate)
            } }
            XCTAssertLessThan(relativeL2Error(Array(out[(s * t * n)..<((s + 1) * t * n)]), ref), 1e-5, "sequence \(s)")
        }
    }
}
