import Foundation
import XCTest
@testable import MambaSep

/// ModelConfig decoding and the strict safetensors loader, on good and bad files.
final class ModelFileTests: XCTestCase {
    // MARK: Config

    func testConfigRoundTripsAndXSPresetHasPublishedParameterCount() throws {
        let json = configJSON(.xs)
        XCTAssertEqual(try ModelConfig.decode(json: json), .xs)
        let count = expectedShapes(.xs).reduce(0) { $0 + $1.1.reduce(1, *) }
        XCTAssertEqual(count, 2_265_857)              // docs/MODEL.md, preset xs
    }

    func testConfigRejectsUnknownMissingAndBadValues() {
        let good = configJSON(.xs)
        func expectBad(_ json: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try ModelConfig.decode(json: json), file: file, line: line) { e in
                guard case let ModelError.badConfig(msg) = e else { return XCTFail("wrong error \(e)", file: file, line: line) }
                XCTAssertTrue(msg.contains(fragment), "\(msg) lacks \(fragment)", file: file, line: line)
            }
        }
        expectBad(good.replacingOccurrences(of: "{", with: "{\"dropout\": 0.1, "), "dropout")
        expectBad(good.replacingOccurrences(of: "\"d_state\":16,", with: ""), "d_state")
        expectBad(good.replacingOccurrences(of: "\"hop_size\":125", with: "\"hop_size\":100"), "hop_size")
        expectBad(good.replacingOccurrences(of: "\"intra_mixer\":\"mamba\"", with: "\"intra_mixer\":\"lstm\""), "lstm")
        expectBad(good.replacingOccurrences(of: "\"num_speakers\":2", with: "\"num_speakers\":0"), "num_speakers")
        expectBad(good.replacingOccurrences(of: "\"architecture\":\"dpmamba\"", with: "\"architecture\":\"convtasnet\""), "architecture")
        expectBad(good.replacingOccurrences(of: "\"stride\":8", with: "\"stride\":\"8\""), "stride")
        expectBad("[1, 2]", "JSON object")
        expectBad("not json", "JSON object")
    }

    // MARK: Loader

    private func load(_ data: Data) throws -> DPMamba { try DPMamba(file: try SafeTensorsFile(data: data)) }

    private func expectError(_ data: Data, file: StaticString = #filePath, line: UInt = #line, _ check: (ModelError) -> Bool) {
        XCTAssertThrowsError(try load(data), file: file, line: line) { e in
            guard let me = e as? ModelError else { return XCTFail("not a ModelError: \(e)", file: file, line: line) }
            XCTAssertTrue(check(me), "unexpected error: \(me)", file: file, line: line)
            XCTAssertFalse(me.description.isEmpty)
        }
    }

    func testLoadsRandomTinyModelAndCountsParameters() throws {
        let c = tinyConfig()
        let model = try load(randomModelBuilder(c).build())
        XCTAssertEqual(model.config, c)
        XCTAssertEqual(model.weights.parameterCount, expectedShapes(c).reduce(0) { $0 + $1.1.reduce(1, *) })
        XCTAssertEqual(model.name, "test-random")
    }

    func testHalfAndBFloatTensorsAreWidened() throws {
        var b = SafeTensorsBuilder()
        b.add("h", [4], [1, -2.5, 0.000061035156, 65504], dtype: "F16")
        b.add("bf", [3], [1, -3, 1.5], dtype: "BF16")
        let f = try SafeTensorsFile(data: b.build())
        XCTAssertEqual(try f.tensor("h").toArray(), [1, -2.5, 0.000061035156, 65504])
        XCTAssertEqual(try f.tensor("bf").toArray(), [1, -3, 1.5])
        XCTAssertEqual(Float(halfBits: 0x0001), Float(sign: .plus, exponent: -24, significand: 1))   // subnormal
        XCTAssertEqual(Float(halfBits: 0xFC00), -.infinity)
    }

    func testTruncatedFileNamesTheProblem() {
        let data = randomModelBuilder(tinyConfig()).build()
        expectError(data.prefix(data.count - 10)) { if case let .badTensor(_, r) = $0 { return r.contains("truncated") } else { return false } }
        expectError(data.prefix(20)) { if case let .badHeader(r) = $0 { return r.contains("truncated") } else { return false } }
        expectError(data.prefix(5)) { if case .badHeader = $0 { return true } else { return false } }
        expectError(Data()) { if case .badHeader = $0 { return true } else { return false } }
    }

    func testBadHeaders() {
        var b = SafeTensorsBuilder()
        b.add("a", [2], [1, 2])
        expectError(b.build(headerOverride: "{not json")) { if case let .badHeader(r) = $0 { return r.contains("JSON") } else { return false } }
        expectError(b.build(headerOverride: "[1]")) { if case .badHeader = $0 { return true } else { return false } }
        var huge = Data([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]); huge.append(Data(count: 100))
        expectError(huge) { if case .badHeader = $0 { return true } else { return false } }
        // Overlapping tensors.
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expectError(b.build(headerOverride: overlap)) { if case let .badTensor(n, r) = $0 { return n == "b" && r.contains("overlap") } else { return false } }
        // Size disagreeing with shape; unknown dtype; negative dimension.
        let wrongSize = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        expectError(b.build(headerOverride: wrongSize)) { if case let .badTensor(n, _) = $0 { return n == "a" } else { return false } }
        let i64 = #"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#
        expectError(b.build(headerOverride: i64)) { if case let .badTensor(n, r) = $0 { return n == "a" && r.contains("I64") } else { return false } }
        let neg = #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#
        expectError(b.build(headerOverride: neg)) { if case let .badTensor(n, _) = $0 { return n == "a" } else { return false } }
        // Tensors fine but no config.
        expectError(b.build()) { if case let .badConfig(r) = $0 { return r.contains("config") } else { return false } }
    }

    func testWrongShapeMissingAndUnknownTensors() {
        let c = tinyConfig()
        var wrong = randomModelBuilder(c)
        let i = wrong.items.firstIndex { $0.name == "masker.blocks.1.inter.mixer.x_proj_b.weight" }!
        wrong.items[i].shape = [wrong.items[i].shape[1], wrong.items[i].shape[0]]
        expectError(wrong.build()) { if case let .wrongShape(n, _, _) = $0 { return n == "masker.blocks.1.inter.mixer.x_proj_b.weight" } else { return false } }

        var missing = randomModelBuilder(c)
        missing.items.removeAll { $0.name == "masker.end_conv.weight" }
        expectError(missing.build()) { $0 == .missingTensor("masker.end_conv.weight") }

        var extra = randomModelBuilder(c)
        extra.add("masker.blocks.2.intra.norm_in.weight", [16], [Float](repeating: 1, count: 16))
        expectError(extra.build()) { $0 == .unexpectedTensor("masker.blocks.2.intra.norm_in.weight") }

        var unknownConfig = randomModelBuilder(c)
        unknownConfig.metadata["config"] = configJSON(c).replacingOccurrences(of: "{", with: "{\"bidirectional\":true,")
        expectError(unknownConfig.build()) { if case let .badConfig(r) = $0 { return r.contains("bidirectional") } else { return false } }

        // The mixer kind decides which tensors are expected: Mamba weights under an S4D config are unknown.
        var mismatch = randomModelBuilder(c)
        mismatch.metadata["config"] = configJSON(tinyConfig(inter: .s4d))
        expectError(mismatch.build()) { if case .missingTensor = $0 { return true } else { return false } }
    }

    /// A valid file whose JSON header is padded with spaces (as the safetensors library pads it to
    /// a multiple of 8), with the header length field replaced by `length` when given.
    private func padded(_ b: SafeTensorsBuilder, length: UInt64? = nil, trailing: Data = Data()) -> Data {
        let plain = b.build()
        let h = Int(plain.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let json = plain.subdata(in: 8..<(8 + h)) + Data(repeating: 0x20, count: 8 - h % 8)
        var out = Data()
        withUnsafeBytes(of: (length ?? UInt64(json.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + json + plain.subdata(in: (8 + h)..<plain.count) + trailing
    }

    func testHeaderLengthMustBeExact() throws {
        let b = randomModelBuilder(tinyConfig())
        let good = padded(b)
        XCTAssertNoThrow(try load(good))
        let h = UInt64(good.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        // One short: the JSON still parses (its last byte was padding) and every tensor would be
        // read one byte early; this used to load (garbage weights) and `info` said nothing.
        expectError(padded(b, length: h - 1)) { if case let .badHeader(r) = $0 { return r.contains("header length \(h - 1) is wrong") } else { return false } }
        expectError(padded(b, length: h + 1)) { if case .badHeader = $0 { return true } else { return false } }
        // Bytes after the last tensor, and a gap between two tensors.
        expectError(padded(b, trailing: Data([0, 0, 0, 0]))) { if case let .badHeader(r) = $0 { return r.contains("trailing") } else { return false } }
        var g = SafeTensorsBuilder()
        g.add("a", [1], [1]); g.add("b", [1], [2]); g.add("c", [1], [3])
        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        expectError(g.build(headerOverride: gap)) { if case let .badTensor(n, r) = $0 { return n == "b" && r.contains("gap") } else { return false } }
    }

    func testNonFiniteWeightsAreRejectedNamingTheTensor() {
        for (value, dtype) in [(Float.nan, "F32"), (Float.infinity, "F32"), (-Float.infinity, "F16"), (Float.nan, "BF16")] {
            var b = randomModelBuilder(tinyConfig())
            let i = b.items.firstIndex { $0.name == "masker.blocks.1.inter.mixer.D" }!
            b.items[i].values[3] = value
            b.items[i].dtype = dtype
            expectError(b.build()) {
                if case let .badTensor(n, r) = $0 { return n == "masker.blocks.1.inter.mixer.D" && r.contains("element 3 of") && r.contains("finite") }
                return false
            }
        }
    }

    func testAFolderIsNotAModel() throws {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("mambasep-dir-\(UUID().uuidString).safetensors")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: d) }
        XCTAssertThrowsError(try DPMamba(path: d.path)) { e in
            XCTAssertEqual(e as? ModelError, .unreadable(path: d.path, reason: "is a folder, not a .safetensors file"))
        }
    }

    func testUnreadablePath() {
        XCTAssertThrowsError(try DPMamba(path: "/nonexistent/model.safetensors")) { e in
            guard case .unreadable? = e as? ModelError else { return XCTFail("\(e)") }
        }
    }
}

/// Resolving `--model NAME|PATH`.
final class ModelStoreTests: XCTestCase {
    func testResolvesPathsNamesAndTheDefault() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mambasep-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.safetensors").path
        try randomModelBuilder(tinyConfig()).build().write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try ModelStore.resolve(path).path, path)
        XCTAssertEqual(try ModelStore.load(path).config, tinyConfig())
        XCTAssertThrowsError(try ModelStore.resolve(dir.appendingPathComponent("none.safetensors").path)) {
            guard case .notFound? = $0 as? ModelError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try ModelStore.resolve("no-such-model-name")) {
            XCTAssertEqual($0 as? ModelError, .notFound("no-such-model-name"))
        }
        // The package bundles the XS model; it is the default and it loads.
        let bundled = ModelStore.bundledModels()
        XCTAssertTrue(bundled.contains(ModelStore.defaultName), "bundled models: \(bundled)")
        let url = try ModelStore.resolve(nil)
        XCTAssertEqual(url.lastPathComponent, ModelStore.defaultName + ".safetensors")
        XCTAssertEqual(try ModelStore.resolve(ModelStore.defaultName), url)
        XCTAssertNoThrow(try DPMamba(path: url.path))
    }

    /// The shipped model is a trained one: on the bundled example (3.5 s, never used in training)
    /// it improves SI-SNR by 9.36 dB, README's figure (`mambasep separate audio-fixtures/mix/mix.wav
    /// -o out/`, then `mambasep eval` as README shows); a random or broken model scores about 0.
    func testBundledModelSeparatesTheBundledExample() throws {
        func load(_ name: String) throws -> [Float] {
            let a = try AudioFile.read(Fixtures.path("mix/" + name))
            XCTAssertEqual(a.sampleRate, 8000)
            return a.samples
        }
        let mix = try load("mix.wav"), refs = [try load("s1.wav"), try load("s2.wav")]
        let model = try DPMamba(path: try ModelStore.resolve(nil).path)
        let est = Separator(model: model, threads: 2).separate(mix)
        let score = try Metrics.permutationInvariant(estimates: est, references: refs, mixture: mix)
        let mean = score.siSNRi!.reduce(0, +) / 2
        XCTAssertEqual(mean, 9.36, accuracy: 0.05, "bundled model SI-SNRi \(mean) dB on the bundled example")
    }
}
