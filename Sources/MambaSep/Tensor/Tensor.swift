// A small dense float tensor and a growable scratch buffer.
//
// Glossary (docs/MODEL.md): shapes are written row-major, the last dimension contiguous (`[Q, N]`
// means Q rows of N floats). The engine works "channels last": activations are `[positions,
// channels]`.

import Foundation

// MARK: - Tensor

/// An immutable-shape, row-major `Float` tensor that owns 64-byte aligned storage.
///
/// Weights are loaded once into `Tensor`s and then only read, so handing the raw `pointer` to
/// kernels is safe; the class is `@unchecked Sendable` on that understanding. A tensor with a
/// zero-sized dimension has `count == 0` and a valid (unused) pointer.
public final class Tensor: @unchecked Sendable, CustomStringConvertible {
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    /// The storage, `count` floats, 64-byte aligned.
    public let pointer: UnsafeMutablePointer<Float>

    /// Creates a zero-filled tensor of the given shape; negative dimensions are a programming error.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative tensor dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.pointer = alignedFloatAlloc(max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// Creates a tensor holding `values` (row-major); `values.count` must equal the shape's product.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "tensor of shape \(shape) needs \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { src in
            if count > 0 { pointer.update(from: src.baseAddress!, count: count) }
        }
    }

    deinit { free(pointer) }

    /// Read-only view of the storage.
    @inlinable public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }

    /// A copy of the values as an array.
    public func toArray() -> [Float] { Array(buffer) }

    /// Element at a flat row-major index.
    @inlinable public subscript(flat index: Int) -> Float { pointer[index] }

    public var description: String { "Tensor\(shape)" }
}

// MARK: - Scratch buffer

/// A growable, 64-byte aligned float buffer reused across calls to avoid reallocations.
///
/// `reserve(_:)` keeps the old allocation when it is large enough; contents are not preserved
/// when it grows. Not thread-safe: give each thread its own.
public final class ScratchBuffer {
    /// Current storage (at least `capacity` floats).
    public private(set) var pointer: UnsafeMutablePointer<Float>
    /// Number of floats the storage can hold.
    public private(set) var capacity: Int

    public init(capacity: Int = 0) {
        self.capacity = max(capacity, 16)
        self.pointer = alignedFloatAlloc(self.capacity)
    }

    deinit { free(pointer) }

    /// Makes room for `count` floats and returns the storage; old contents are lost on growth.
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            free(pointer)
            capacity = count
            pointer = alignedFloatAlloc(count)
        }
        return pointer
    }
}

/// Allocates `count` floats aligned to 64 bytes (released with `free`); aborts if memory is exhausted.
@usableFromInline
func alignedFloatAlloc(_ count: Int) -> UnsafeMutablePointer<Float> {
    var raw: UnsafeMutableRawPointer?
    let bytes = max(count, 1) * MemoryLayout<Float>.stride
    guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
        fatalError("out of memory allocating \(bytes) bytes")
    }
    return raw.bindMemory(to: Float.self, capacity: max(count, 1))
}

// MARK: - Layout helpers

/// Transposes a row-major `[rows, cols]` matrix of `width`-float rows into `[cols, rows]` rows.
///
/// Used to switch between `[S, K, N]` (intra) and `[K, S, N]` (inter) layouts: each moved unit
/// is a contiguous row of `width` floats. `src` and `dst` must not overlap.
@inlinable
@_optimize(speed)
public func transposeRows(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                          rows: Int, cols: Int, width: Int) {
    for r in 0..<rows {
        for c in 0..<cols {
            (dst + (c * rows + r) * width).update(from: src + (r * cols + c) * width, count: width)
        }
    }
}

/// The values of a row-major `[rows, cols]` tensor as a new `[cols, rows]` tensor (weight layouts
/// at load time; the tensor's own shape may split `cols` further, e.g. `[E, 1, W]`).
public func transposed(_ t: Tensor, rows: Int, cols: Int) -> Tensor {
    precondition(rows * cols == t.count, "\(t) is not \(rows) × \(cols)")
    let out = Tensor(zeros: [cols, rows])
    transposeRows(t.pointer, out.pointer, rows: rows, cols: cols, width: 1)
    return out
}
