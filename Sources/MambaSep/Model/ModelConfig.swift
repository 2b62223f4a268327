// The model's hyperparameters, decoded strictly from `__metadata__["config"]` (docs/MODEL.md).

import Foundation

// MARK: - Config

/// Which sequence mixer a path uses.
public enum MixerKind: String, Codable, Sendable {
    case mamba
    case s4d
}

/// Every hyperparameter of a DPMamba model, as the PyTorch reference exports it.
///
/// Decoding is strict: unknown keys, missing keys and out-of-range values are errors
/// (`ModelError.badConfig` naming the key) rather than silently ignored.
public struct ModelConfig: Codable, Equatable, Sendable {
    public var architecture: String
    public var version: Int
    public var sampleRate: Int
    public var numSpeakers: Int
    public var nFilters: Int
    public var kernelSize: Int
    public var stride: Int
    public var chunkSize: Int
    public var hopSize: Int
    public var numBlocks: Int
    public var intraMixer: MixerKind
    public var interMixer: MixerKind
    public var skipAroundIntra: Bool
    public var dState: Int
    public var dConv: Int
    public var expand: Int
    public var dtRank: Int
    public var s4dState: Int
    public var s4dInit: String
    public var rmsEps: Float
    public var gnEps: Float

    enum CodingKeys: String, CodingKey, CaseIterable {
        case architecture, version
        case sampleRate = "sample_rate"
        case numSpeakers = "num_speakers"
        case nFilters = "n_filters"
        case kernelSize = "kernel_size"
        case stride
        case chunkSize = "chunk_size"
        case hopSize = "hop_size"
        case numBlocks = "num_blocks"
        case intraMixer = "intra_mixer"
        case interMixer = "inter_mixer"
        case skipAroundIntra = "skip_around_intra"
        case dState = "d_state"
        case dConv = "d_conv"
        case expand
        case dtRank = "dt_rank"
        case s4dState = "s4d_state"
        case s4dInit = "s4d_init"
        case rmsEps = "rms_eps"
        case gnEps = "gn_eps"
    }

    /// The XS preset of docs/MODEL.md (N = 128, 8 blocks, Mamba on both paths).
    public static let xs = ModelConfig(
        architecture: "dpmamba", version: 1, sampleRate: 8000, numSpeakers: 2,
        nFilters: 128, kernelSize: 16, stride: 8, chunkSize: 250, hopSize: 125, numBlocks: 8,
        intraMixer: .mamba, interMixer: .mamba, skipAroundIntra: true,
        dState: 16, dConv: 4, expand: 2, dtRank: 8, s4dState: 64, s4dInit: "lin",
        rmsEps: 1e-5, gnEps: 1e-8)

    public init(architecture: String, version: Int, sampleRate: Int, numSpeakers: Int, nFilters: Int,
                kernelSize: Int, stride: Int, chunkSize: Int, hopSize: Int, numBlocks: Int,
                intraMixer: MixerKind, interMixer: MixerKind, skipAroundIntra: Bool,
                dState: Int, dConv: Int, expand: Int, dtRank: Int, s4dState: Int, s4dInit: String,
                rmsEps: Float, gnEps: Float) {
        self.architecture = architecture; self.version = version; self.sampleRate = sampleRate
        self.numSpeakers = numSpeakers; self.nFilters = nFilters; self.kernelSize = kernelSize
        self.stride = stride; self.chunkSize = chunkSize; self.hopSize = hopSize; self.numBlocks = numBlocks
        self.intraMixer = intraMixer; self.interMixer = interMixer; self.skipAroundIntra = skipAroundIntra
        self.dState = dState; self.dConv = dConv; self.expand = expand; self.dtRank = dtRank
        self.s4dState = s4dState; self.s4dInit = s4dInit; self.rmsEps = rmsEps; self.gnEps = gnEps
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        let all = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = all.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
            throw ModelError.badConfig("unknown key \"\(unknown)\"")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ k: CodingKeys) throws -> T {
            do { return try c.decode(T.self, forKey: k) } catch DecodingError.keyNotFound {
                throw ModelError.badConfig("missing key \"\(k.rawValue)\"")
            } catch {
                throw ModelError.badConfig("key \"\(k.rawValue)\" has the wrong type (expected \(T.self))")
            }
        }
        architecture = try get(.architecture); version = try get(.version)
        sampleRate = try get(.sampleRate); numSpeakers = try get(.numSpeakers)
        nFilters = try get(.nFilters); kernelSize = try get(.kernelSize); stride = try get(.stride)
        chunkSize = try get(.chunkSize); hopSize = try get(.hopSize); numBlocks = try get(.numBlocks)
        let intra: String = try get(.intraMixer), inter: String = try get(.interMixer)
        guard let im = MixerKind(rawValue: intra) else { throw ModelError.badConfig("intra_mixer \"\(intra)\" is not \"mamba\" or \"s4d\"") }
        guard let em = MixerKind(rawValue: inter) else { throw ModelError.badConfig("inter_mixer \"\(inter)\" is not \"mamba\" or \"s4d\"") }
        intraMixer = im; interMixer = em
        skipAroundIntra = try get(.skipAroundIntra)
        dState = try get(.dState); dConv = try get(.dConv); expand = try get(.expand); dtRank = try get(.dtRank)
        s4dState = try get(.s4dState); s4dInit = try get(.s4dInit)
        rmsEps = try get(.rmsEps); gnEps = try get(.gnEps)
        try validate()
    }

    /// Decodes and validates a config JSON string.
    public static func decode(json: String) throws -> ModelConfig {
        do {
            return try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8))
        } catch let e as ModelError {
            throw e
        } catch {
            throw ModelError.badConfig("not a JSON object")
        }
    }

    // MARK: Validation

    /// Checks ranges and the relations docs/MODEL.md fixes (hop = chunk/2, E divisible by 8, ...).
    public func validate() throws {
        func need(_ ok: Bool, _ msg: @autoclosure () -> String) throws { if !ok { throw ModelError.badConfig(msg()) } }
        try need(architecture == "dpmamba", "architecture \"\(architecture)\" is not \"dpmamba\"")
        try need(version == 1, "version \(version) is not supported (this engine reads version 1)")
        try need((1000...384_000).contains(sampleRate), "sample_rate \(sampleRate) out of range")
        try need((1...8).contains(numSpeakers), "num_speakers \(numSpeakers) out of range 1...8")
        try need((1...4096).contains(nFilters), "n_filters \(nFilters) out of range")
        try need((1...1024).contains(kernelSize), "kernel_size \(kernelSize) out of range")
        try need(stride >= 1 && stride <= kernelSize, "stride \(stride) must be in 1...kernel_size")
        try need((2...100_000).contains(chunkSize), "chunk_size \(chunkSize) out of range")
        try need(chunkSize % 2 == 0, "chunk_size \(chunkSize) must be even (chunks overlap by exactly half)")
        try need(hopSize == chunkSize / 2, "hop_size \(hopSize) must be chunk_size/2 = \(chunkSize / 2)")
        try need((1...256).contains(numBlocks), "num_blocks \(numBlocks) out of range")
        try need((1...256).contains(dState), "d_state \(dState) out of range")
        try need((1...64).contains(dConv), "d_conv \(dConv) out of range")
        try need((1...16).contains(expand), "expand \(expand) out of range")
        try need((1...4096).contains(dtRank), "dt_rank \(dtRank) out of range")
        if intraMixer == .mamba || interMixer == .mamba {
            try need(innerWidth % 8 == 0, "expand·n_filters = \(innerWidth) must be a multiple of 8 for this engine")
        }
        try need(s4dState >= 2 && s4dState % 2 == 0 && s4dState <= 4096, "s4d_state \(s4dState) must be even and ≥ 2")
        try need(["lin", "legs"].contains(s4dInit), "s4d_init \"\(s4dInit)\" is not \"lin\" or \"legs\"")
        try need(rmsEps > 0 && rmsEps.isFinite, "rms_eps must be positive")
        try need(gnEps > 0 && gnEps.isFinite, "gn_eps must be positive")
    }

    // MARK: Derived sizes

    /// Mamba inner width E = expand · N.
    public var innerWidth: Int { expand * nFilters }
    /// S4D complex state pairs P = s4d_state / 2.
    public var s4dPairs: Int { s4dState / 2 }
}
