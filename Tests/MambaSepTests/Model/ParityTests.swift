import Foundation
import XCTest
@testable import MambaSep

/// Parity with the PyTorch reference: every fixture in audio-fixtures/parity/ (weights plus
/// `io.*` activations). Each recorded stage is compared in order, so a failure names the first
/// stage that diverges.
final class ParityTests: XCTestCase {
    static let fixtureDir: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("audio-fixtures/parity")

    static func fixtures() -> [URL] {
        let files = (try? FileManager.default.contentsOfDirectory(at: fixtureDir, includingPropertiesForKeys: nil)) ?? []
        return files.filter { $0.pathExtension == "safetensors" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// Tolerance on relative L2 error per stage; the final waveform must meet 1e-4.
    static func tolerance(_ stage: String) -> Double {
        stage == "io.output" || stage == "io.masks" ? 1e-4 : 2e-4
    }

    func testFixturesExist() {
        XCTAssertFalse(Self.fixtures().isEmpty, "no parity fixtures in \(Self.fixtureDir.path)")
    }

    func testEveryFixtureMatchesReferenceStageByStage() throws {
        for url in Self.fixtures() {
            let start = Date()
            try checkFixture(url)
            print("parity \(url.lastPathComponent): \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        }
    }

    private func checkFixture(_ url: URL) throws {
        let name = url.lastPathComponent
        let file = try SafeTensorsFile(path: url.path)
        let model = try DPMamba(file: file, ignoringPrefixes: ["io."])
        let c = model.config
        let input = try file.tensor("io.input")                       // [B, T]
        let batch = input.shape[0], t = input.shape[1]
        let sh = model.shape(samples: t)
        let n = c.nFilters, k = c.chunkSize, l = sh.frames, s = sh.chunks, spk = c.numSpeakers
        let scratch = DPMambaScratch(workers: 2)
        for b in 0..<batch {
            // Reference stages, converted to the engine's channels-last layouts.
            var expected: [(String, [Float])] = []
            func ref(_ key: String) throws -> Tensor? { file.entries[key] == nil ? nil : try file.tensor(key) }
            if let e = try ref("io.encoder") {                       // [B, N, L] → [L, N]
                XCTAssertEqual(e.shape, [batch, n, l], "\(name) io.encoder shape")
                expected.append(("io.encoder", (0..<(l * n)).map { i in e[flat: (b * n + i % n) * l + i / n] }))
            }
            var chunkKeys = ["io.chunked"] + (0..<c.numBlocks).map { "io.block\($0)" }
            chunkKeys = chunkKeys.filter { file.entries[$0] != nil }
            for key in chunkKeys {                                    // [B, N, K, S] → [S, K, N]
                let e = try file.tensor(key)
                XCTAssertEqual(e.shape, [batch, n, k, s], "\(name) \(key) shape")
                expected.append((key, (0..<(s * k * n)).map { i in
                    let ch = i % n, kk = (i / n) % k, ss = i / (n * k)
                    return e[flat: ((b * n + ch) * k + kk) * s + ss]
                }))
            }
            if let e = try ref("io.masks") {                          // [B, C, N, L] → [C, L, N]
                expected.append(("io.masks", (0..<(spk * l * n)).map { i in
                    let ch = i % n, f = (i / n) % l, cc = i / (n * l)
                    return e[flat: ((b * spk + cc) * n + ch) * l + f]
                }))
            }
            let out = try file.tensor("io.output")                   // [B, C, T]
            expected.append(("io.output", (0..<(spk * t)).map { out[flat: b * spk * t + $0] }))

            var got: [String: [Float]] = [:]
            let x = (0..<t).map { input[flat: b * t + $0] }
            let outs = (0..<spk).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: t) }
            defer { outs.forEach { $0.deallocate() } }
            x.withUnsafeBufferPointer { xp in
                model.forward(xp.baseAddress!, samples: t, scratch: scratch, outputs: outs) { stage, buf in
                    let key: String
                    switch stage {
                    case .encoder: key = "io.encoder"
                    case .chunked: key = "io.chunked"
                    case let .block(i): key = "io.block\(i)"
                    case .masks: key = "io.masks"
                    case .output: key = "io.output"
                    }
                    got[key] = Array(buf)
                }
            }
            var errors: [String] = []
            for (key, want) in expected {
                guard let have = got[key] else { XCTFail("\(name): engine produced no \(key)"); continue }
                guard have.count == want.count else { XCTFail("\(name) batch \(b): \(key) has \(have.count) values, want \(want.count)"); break }
                let err = relativeL2Error(have, want)
                errors.append("\(key.dropFirst(3)) \(String(format: "%.1e", err))")
                if err > Self.tolerance(key) {
                    XCTFail("\(name) batch \(b): first divergence at \(key), relative L2 error \(err)")
                    break
                }
            }
            print("parity \(name) batch \(b): " + errors.joined(separator: ", "))
        }
    }
}
