// Finding a model: bundled SwiftPM resources by name, or a .safetensors path.

import Foundation

/// Resolves `--model NAME|PATH` to a file and loads it.
public enum ModelStore {
    /// The model `separate` uses when none is named (once one is bundled).
    public static let defaultName = "dpmamba-xs"

    /// The folder holding bundled `.safetensors` files, if this build ships one.
    ///
    /// Uses `Bundle.module` only after checking its folder exists next to the executable, since
    /// the generated accessor aborts when the resource bundle is missing (e.g. a binary copied
    /// without it).
    public static var resourceDirectory: URL? {
        let bundleDir = Bundle.main.bundleURL.appendingPathComponent("mambasep_MambaSep.resources")
        let macDir = Bundle.main.bundleURL.appendingPathComponent("mambasep_MambaSep.bundle")
        let fm = FileManager.default
        guard fm.fileExists(atPath: bundleDir.path) || fm.fileExists(atPath: macDir.path) else { return nil }
        // The copied folder is the resource URL itself on Linux and one level down on macOS.
        guard let base = Bundle.module.resourceURL else { return nil }
        let candidates = [base.appendingPathComponent("Resources"), base]
        return candidates.first { dir in
            let files = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
            return files.contains { $0.hasSuffix(".safetensors") }
        }
    }

    /// Names of bundled models (file names without `.safetensors`), sorted.
    public static func bundledModels() -> [String] {
        guard let dir = resourceDirectory,
              let files = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        return files.filter { $0.hasSuffix(".safetensors") }.map { String($0.dropLast(".safetensors".count)) }.sorted()
    }

    /// The file for `spec`: nil means the default bundled model; a string with a `/`, ending in
    /// `.safetensors`, or naming an existing file is a path; anything else a bundled name.
    ///
    /// Throws `.noBundledModel` when nothing is bundled and no model was named, `.notFound` for an
    /// unknown name or a missing path.
    public static func resolve(_ spec: String?) throws -> URL {
        let fm = FileManager.default
        guard let spec, !spec.isEmpty else {
            let names = bundledModels()
            guard let name = names.contains(defaultName) ? defaultName : names.first,
                  let dir = resourceDirectory else { throw ModelError.noBundledModel }
            return dir.appendingPathComponent(name + ".safetensors")
        }
        if spec.contains("/") || spec.hasSuffix(".safetensors") || fm.fileExists(atPath: spec) {
            guard fm.fileExists(atPath: spec) else { throw ModelError.notFound(spec) }
            return URL(fileURLWithPath: spec)
        }
        guard bundledModels().contains(spec), let dir = resourceDirectory else { throw ModelError.notFound(spec) }
        return dir.appendingPathComponent(spec + ".safetensors")
    }

    /// Resolves and loads a model.
    public static func load(_ spec: String?) throws -> DPMamba {
        try DPMamba(path: try resolve(spec).path)
    }
}
