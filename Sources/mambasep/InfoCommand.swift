import ArgumentParser
import Foundation
import MambaSep

// MARK: - info

/// `mambasep info [--model NAME|PATH] [--json]`: describes a model.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a model: configuration, parameter count, sample rate.")

    @Option(help: "Model: a bundled model name or a path to a .safetensors file (default: the bundled model).")
    var model: String?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    struct Report: Encodable {
        let path: String
        let name: String?
        let parameters: Int
        let sampleRate: Int
        let speakers: Int
        let config: ModelConfig
        let metadata: [String: String]
        let bundledModels: [String]
    }

    func run() throws {
        try reportingErrors {
            let url = try ModelStore.resolve(model)
            let m = try DPMamba(path: url.path)
            let c = m.config
            var meta = m.metadata
            meta["config"] = nil
            let report = Report(path: url.path, name: m.name, parameters: m.weights.parameterCount,
                                sampleRate: c.sampleRate, speakers: c.numSpeakers, config: c,
                                metadata: meta, bundledModels: ModelStore.bundledModels())
            if json {
                print(try jsonText(report))
                return
            }
            var rows: [[String]] = [
                ["model", m.name ?? url.deletingPathExtension().lastPathComponent],
                ["file", url.path],
                ["parameters", "\(report.parameters) (\(fixed(Double(report.parameters) / 1e6)) M)"],
                ["sample rate", "\(c.sampleRate) Hz"],
                ["speakers", "\(c.numSpeakers)"],
                ["encoder", "\(c.nFilters) filters, kernel \(c.kernelSize), stride \(c.stride)"],
                ["chunks", "\(c.chunkSize) frames, hop \(c.hopSize)"],
                ["blocks", "\(c.numBlocks) × (intra \(c.intraMixer.rawValue), inter \(c.interMixer.rawValue))"
                    + (c.skipAroundIntra ? ", skip around intra" : "")],
            ]
            if c.intraMixer == .mamba || c.interMixer == .mamba {
                rows.append(["mamba", "d_state \(c.dState), d_conv \(c.dConv), expand \(c.expand), dt_rank \(c.dtRank)"])
            }
            if c.intraMixer == .s4d || c.interMixer == .s4d {
                rows.append(["s4d", "state \(c.s4dState), init \(c.s4dInit)"])
            }
            rows.append(["eps", "rms \(c.rmsEps), group norm \(c.gnEps)"])
            for (k, v) in meta.sorted(by: { $0.key < $1.key }) where k != "name" { rows.append([k, v]) }
            print(renderTable(rows))
        }
    }
}
