// A strict reader for Hugging Face safetensors files.
//
// Format: 8-byte little-endian header length H, H bytes of JSON, then the data section. The JSON
// maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
// data section) plus an optional "__metadata__" map of strings.

import Foundation

// MARK: - File

/// A parsed, validated safetensors file; tensors are decoded to `Float` on request.
public struct SafeTensorsFile {
    /// Element types this engine reads (others are rejected by name).
    public enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16"
        var size: Int { self == .f32 ? 4 : 2 }
    }

    /// One tensor's header entry.
    public struct Entry: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Byte range within the data section.
        public let begin: Int, end: Int
        public var count: Int { shape.reduce(1, *) }
    }

    /// Largest header accepted (the format's own limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// `__metadata__` (empty if absent).
    public let metadata: [String: String]
    /// Entries by name.
    public let entries: [String: Entry]
    private let bytes: Data
    private let dataStart: Int

    /// Reads and validates the file at `path`.
    ///
    /// Throws `ModelError.unreadable` when it cannot be opened, `.badHeader`/`.badTensor` when
    /// its structure is wrong (a truncated file fails here: its offsets run past the end).
    public init(path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ModelError.unreadable(path: path, reason: "no such file")
        }
        if isDir.boolValue { throw ModelError.unreadable(path: path, reason: "is a folder, not a .safetensors file") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw ModelError.unreadable(path: path, reason: plainReason(error))
        }
        try self.init(data: data)
    }

    /// Parses an in-memory safetensors image.
    public init(data: Data) throws {
        bytes = data
        guard data.count >= 8 else { throw ModelError.badHeader("file is \(data.count) bytes, shorter than the 8-byte header length") }
        var h: UInt64 = 0
        for i in 0..<8 { h |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard h > 0, h <= UInt64(Self.maxHeaderBytes) else { throw ModelError.badHeader("header length \(h) is not in 1...\(Self.maxHeaderBytes)") }
        let headerLength = Int(h)
        guard 8 + headerLength <= data.count else {
            throw ModelError.badHeader("header length \(headerLength) runs past the end of the \(data.count)-byte file (truncated?)")
        }
        dataStart = 8 + headerLength
        let dataLength = data.count - dataStart
        let headerBytes = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + dataStart))
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerBytes) } catch {
            throw ModelError.badHeader("header is not valid JSON")
        }
        guard let root = json as? [String: Any] else { throw ModelError.badHeader("header JSON is not an object") }

        var meta: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (name, value) in root {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw ModelError.badHeader("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw ModelError.badHeader("__metadata__[\"\(k)\"] is not a string") }
                    meta[k] = s
                }
                continue
            }
            entries[name] = try Self.parseEntry(name: name, value, dataLength: dataLength)
        }
        // Non-overlapping data ranges (empty tensors occupy nothing).
        let sorted = entries.values.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end {
            throw ModelError.badTensor(name: b.name, reason: "data bytes \(b.begin)..<\(b.end) overlap tensor '\(a.name)' (\(a.begin)..<\(a.end))")
        }
        // The tensors must fill the data section exactly, back to back (as the format requires):
        // a header length off by one leaves a byte over (or short), and every tensor would be read
        // shifted by it.
        var covered = 0
        for e in sorted {
            guard e.begin == covered else {
                throw ModelError.badTensor(name: e.name, reason: "data starts at byte \(e.begin) but the previous tensor ends at \(covered): the data section has a gap (wrong header length?)")
            }
            covered = e.end
        }
        guard covered == dataLength else {
            throw ModelError.badHeader("the tensors cover \(covered) of the \(dataLength) bytes after the header: the header length \(headerLength) is wrong or the file has trailing bytes")
        }
        self.metadata = meta
        self.entries = entries
    }

    private static func parseEntry(name: String, _ value: Any, dataLength: Int) throws -> Entry {
        func bad(_ reason: String) -> ModelError { .badTensor(name: name, reason: reason) }
        guard let obj = value as? [String: Any] else { throw bad("header entry is not an object") }
        guard let dtypeName = obj["dtype"] as? String else { throw bad("missing dtype") }
        guard let dtype = DType(rawValue: dtypeName) else { throw bad("unsupported dtype \(dtypeName) (F32, F16 or BF16 only)") }
        guard let shapeAny = obj["shape"] as? [Any] else { throw bad("missing shape") }
        var shape: [Int] = []
        for d in shapeAny {
            guard let n = Self.integer(d), n >= 0, n <= Int(Int32.max) else { throw bad("shape \(shapeAny) has a bad dimension") }
            shape.append(n)
        }
        guard let offs = obj["data_offsets"] as? [Any], offs.count == 2,
              let begin = Self.integer(offs[0]), let end = Self.integer(offs[1]) else { throw bad("data_offsets must be two integers") }
        guard begin >= 0, begin <= end else { throw bad("data_offsets [\(begin), \(end)] are not increasing") }
        guard end <= dataLength else { throw bad("data_offsets end \(end) past the \(dataLength)-byte data section (truncated file?)") }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o, p <= Int(Int32.max) else { throw bad("shape \(shape) is too large") }
            count = p
        }
        guard end - begin == count * dtype.size else {
            throw bad("\(end - begin) data bytes for shape \(shape) of \(dtype.rawValue) (expected \(count * dtype.size))")
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    private static func integer(_ v: Any) -> Int? {
        guard let n = v as? NSNumber else { return nil }
        let d = n.doubleValue
        guard d == d.rounded(), abs(d) < 9e15 else { return nil }
        return n.intValue
    }

    // MARK: Tensors

    /// Decodes tensor `name` to `Float` (F16/BF16 widened); throws `.missingTensor` if absent.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entries[name] else { throw ModelError.missingTensor(name) }
        let t = Tensor(zeros: e.shape)
        let dst = t.pointer
        let n = e.count
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let src = raw.baseAddress! + dataStart + e.begin
            switch e.dtype {
            case .f32:
                for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            case .f16:
                for i in 0..<n {
                    let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    dst[i] = Float(halfBits: bits)
                }
            case .bf16:
                for i in 0..<n {
                    let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    dst[i] = Float(bitPattern: UInt32(bits) << 16)
                }
            }
        }
        return t
    }
}

extension Float {
    /// Widens IEEE 754 binary16 bits (handles subnormals, infinities and NaN).
    init(halfBits h: UInt16) {
        let sign = UInt32(h & 0x8000) << 16
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x03FF)
        if exp == 0 {
            let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
            self = sign != 0 ? -v : v
        } else if exp == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
        }
    }
}

// MARK: - Strict weight reader

/// Hands out a file's tensors by key with shape checks and remembers which were used, so that
/// `finish()` can reject anything left over.
public final class WeightReader {
    public let file: SafeTensorsFile
    private let ignoredPrefixes: [String]
    private var used: Set<String> = []

    /// `ignoringPrefixes`: keys starting with these are allowed to remain unused (e.g. `"io."`
    /// for parity fixtures, which carry reference activations beside the weights).
    public init(_ file: SafeTensorsFile, ignoringPrefixes: [String] = []) {
        self.file = file
        self.ignoredPrefixes = ignoringPrefixes
    }

    /// The tensor `key`, which must have exactly `shape`.
    public func take(_ key: String, _ shape: [Int]) throws -> Tensor {
        guard let e = file.entries[key] else { throw ModelError.missingTensor(key) }
        guard e.shape == shape else { throw ModelError.wrongShape(name: key, expected: shape, found: e.shape) }
        used.insert(key)
        let t = try file.tensor(key)
        // A NaN or Inf weight makes every output NaN (or worse, only some): refuse it here.
        let values = UnsafeBufferPointer(start: t.pointer, count: e.count)
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw ModelError.badTensor(name: key, reason: "element \(i) of \(e.count) is \(values[i]) (weights must be finite numbers)")
        }
        return t
    }

    /// Total elements of the tensors taken so far.
    public var parameterCount: Int { used.reduce(0) { $0 + (file.entries[$1]?.count ?? 0) } }

    /// Throws `.unexpectedTensor` for the first (alphabetically) key never taken and not ignored.
    public func finish() throws {
        let extra = file.entries.keys.filter { k in !used.contains(k) && !ignoredPrefixes.contains { k.hasPrefix($0) } }.sorted()
        if let first = extra.first { throw ModelError.unexpectedTensor(first) }
    }
}
