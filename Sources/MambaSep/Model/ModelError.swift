// Errors raised while locating, parsing and validating model files.

/// A problem with a model file or its configuration; the message names the file part at fault.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read.
    case unreadable(path: String, reason: String)
    /// The safetensors container is malformed (sizes, JSON, offsets, dtypes).
    case badHeader(String)
    /// One tensor's entry is malformed; `name` is its key.
    case badTensor(name: String, reason: String)
    /// A tensor the configuration requires is absent.
    case missingTensor(String)
    /// The file holds a tensor the configuration does not use.
    case unexpectedTensor(String)
    /// A tensor has the wrong shape.
    case wrongShape(name: String, expected: [Int], found: [Int])
    /// `__metadata__["config"]` is missing, unparsable or has bad / unknown values.
    case badConfig(String)
    /// A model name matched no bundled model and no file.
    case notFound(String)
    /// No model ships with this build and none was given.
    case noBundledModel

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read model file \(path): \(reason)"
        case let .badHeader(s): return "invalid safetensors file: \(s)"
        case let .badTensor(name, reason): return "invalid tensor '\(name)': \(reason)"
        case let .missingTensor(name): return "model file lacks tensor '\(name)'"
        case let .unexpectedTensor(name): return "model file has unexpected tensor '\(name)' (not used by its config)"
        case let .wrongShape(name, expected, found):
            return "tensor '\(name)' has shape \(found), expected \(expected)"
        case let .badConfig(s): return "invalid model config: \(s)"
        case let .notFound(s): return "no model named '\(s)': not a bundled model name and no such file"
        case .noBundledModel:
            return "no model is bundled with this build of mambasep; pass --model PATH to a .safetensors file"
        }
    }
}
