import Foundation
import XCTest
@testable import MambaSep

/// `Explain.run` / `Explain.hiddenAttention` on small random models: shapes, triangles, time
/// axes, averaging, and every bad request as a one-line error.
final class ExplainTests: XCTestCase {
    private func model(_ config: ModelConfig = tinyConfig(), seed: UInt64 = 5) throws -> DPMamba {
        try DPMamba(file: SafeTensorsFile(data: randomModelBuilder(config, seed: seed).build()))
    }

    private func signal(_ n: Int) -> [Float] {
        var rng = SeededRandom(seed: UInt64(n))
        return rng.floats(n, -0.5, 0.5)
    }

    func testMapsHaveTheLayersShapesTrianglesAndTimes() throws {
        let m = try model()
        let x = signal(800)
        let sh = m.shape(samples: x.count)
        let cfg = m.config
        let layers = [MambaLayerID(block: 1, path: .intra), MambaLayerID(block: 0, path: .inter)]
        let r = try Explain.run(model: m, samples: x, layers: layers, chunk: 3)
        XCTAssertEqual(r.maps.map(\.layer), layers)
        XCTAssertEqual(r.estimates, m.separate(x), "the explained pass separates as separate does")
        let intra = r.maps[0], inter = r.maps[1]
        XCTAssertEqual(intra.length, cfg.chunkSize)
        XCTAssertEqual(inter.length, sh.chunks)
        XCTAssertEqual(intra.chunk, 3)
        XCTAssertNil(inter.chunk)
        let frame = Double(cfg.stride) / Double(cfg.sampleRate)
        XCTAssertEqual(intra.time(0), Double(3 * cfg.hopSize - cfg.hopSize) * frame, accuracy: 1e-12)
        XCTAssertEqual(intra.stepSeconds, frame, accuracy: 1e-12)
        XCTAssertEqual(inter.time(2), Double(2 * cfg.hopSize) * frame, accuracy: 1e-12)
        for map in r.maps {
            let n = map.length
            XCTAssertEqual(map.forward.count, n * n)
            XCTAssertEqual(map.channels, 0...(cfg.innerWidth - 1))
            var diagonal: Float = 0
            for t in 0..<n {
                diagonal += abs(map.forward[t * n + t])
                for s in 0..<n {
                    if s > t { XCTAssertEqual(map.forward[t * n + s], 0) }
                    if s < t { XCTAssertEqual(map.backward[t * n + s], 0) }
                    XCTAssertEqual(map.combined[t * n + s], s > t ? map.backward[t * n + s] : map.forward[t * n + s])
                }
            }
            XCTAssertGreaterThan(diagonal, 0)
        }
    }

    /// A map is a mean over channels: the mean over all channels is the average of the means
    /// over two halves.
    func testChannelRangesAverage() throws {
        let m = try model()
        let x = signal(700)
        let e = m.config.innerWidth
        let layer = MambaLayerID(block: 0, path: .intra)
        let all = try Explain.hiddenAttention(model: m, samples: x, layer: layer)
        let low = try Explain.hiddenAttention(model: m, samples: x, layer: layer, channels: 0...(e / 2 - 1))
        let high = try Explain.hiddenAttention(model: m, samples: x, layer: layer, channels: (e / 2)...(e - 1))
        XCTAssertEqual(low.channels, 0...(e / 2 - 1))
        let mean = zip(low.combined, high.combined).map { ($0 + $1) / 2 }
        XCTAssertLessThan(relativeL2Error(mean, all.combined), 1e-5)
    }

    func testBadRequestsAreOneLineErrors() throws {
        let m = try model()
        let x = signal(800)
        let chunks = m.shape(samples: x.count).chunks
        let e = m.config.innerWidth
        func error(_ body: () throws -> Any) -> ExplainError? {
            do { _ = try body(); return nil } catch { return error as? ExplainError }
        }
        let intra = MambaLayerID(block: 0, path: .intra)
        XCTAssertEqual(error { try Explain.run(model: m, samples: x, layers: [MambaLayerID(block: 2, path: .intra)]) },
                       .noSuchBlock(2, blocks: 2))
        XCTAssertEqual(error { try Explain.run(model: m, samples: x, layers: [MambaLayerID(block: -1, path: .inter)]) },
                       .noSuchBlock(-1, blocks: 2))
        XCTAssertEqual(error { try Explain.run(model: m, samples: x, layers: [intra], chunk: chunks) },
                       .noSuchChunk(chunks, chunks: chunks))
        XCTAssertEqual(error { try Explain.run(model: m, samples: x, layers: [intra], channels: 0...e) },
                       .badChannels(lower: 0, upper: e, channels: e))
        XCTAssertEqual(error { try Explain.run(model: m, samples: [], layers: [intra]) }, .noSamples)
        XCTAssertEqual(error { try Explain.run(model: m, samples: x, layers: []) }, .noLayers)
        let s4d = try model(tinyConfig(inter: .s4d))
        let inter = MambaLayerID(block: 1, path: .inter)
        XCTAssertEqual(error { try Explain.run(model: s4d, samples: x, layers: [inter]) }, .notMamba(inter))
        XCTAssertEqual(ExplainError.notMamba(inter).description,
                       "masker.blocks.1.inter.mixer is an S4D mixer; hidden attention needs a Mamba layer")
        XCTAssertEqual(ExplainError.noSuchBlock(9, blocks: 8).description, "block 9 does not exist: the model has 8 blocks (0-7)")
    }

    func testExcerptsAndOutOfRangeTimes() throws {
        let audio = MonoAudio(samples: (0..<8000).map { Float($0) }, sampleRate: 4000)     // 2 s
        let (part, capped) = try Explain.excerpt(audio, start: 0.5, duration: 1)
        XCTAssertEqual(part.first, 2000)
        XCTAssertEqual(part.count, 4000)
        XCTAssertFalse(capped)
        XCTAssertEqual(try Explain.excerpt(audio, start: 1.5).samples.count, 2000)
        let long = try Explain.excerpt(audio, maxDuration: 1.5)
        XCTAssertEqual(long.samples.count, 6000)
        XCTAssertTrue(long.capped)
        func error(_ start: Double, _ duration: Double?, max: Double = 30) -> ExplainError? {
            do { _ = try Explain.excerpt(audio, start: start, duration: duration, maxDuration: max); return nil } catch {
                return error as? ExplainError
            }
        }
        XCTAssertEqual(error(2, nil), .badStart(2, length: 2))
        XCTAssertEqual(error(-0.1, nil), .badStart(-0.1, length: 2))
        XCTAssertEqual(error(.nan, nil)?.description.hasPrefix("start nan"), true)
        XCTAssertEqual(error(0, 0), .badDuration(0))
        XCTAssertEqual(error(1.5, 1), .beyondEnd(start: 1.5, duration: 1, length: 2))
        XCTAssertEqual(error(0, 2, max: 1), .tooLong(2, limit: 1))
        XCTAssertEqual(try Explain.excerpt(audio, start: 0, duration: 2).samples.count, 8000)
        XCTAssertEqual(error(0, nil), nil)
        XCTAssertThrowsError(try Explain.excerpt(MonoAudio(samples: [], sampleRate: 8000)))
        XCTAssertEqual(ExplainError.beyondEnd(start: 1.5, duration: 1, length: 2).description,
                       "start 1.5 s + duration 1 s runs past the end of the audio (2 s)")
    }
}
