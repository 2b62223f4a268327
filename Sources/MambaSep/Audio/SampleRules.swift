// What a valid sample is, in one place for every reader, writer and stream: finite on the way in
// (`NonFiniteInput`), within full scale on the way out to integer formats (`clipToFullScale`).

// MARK: - Non-finite input

/// What to do with a NaN or ±Inf input sample.
///
/// Files use `.reject` (`AudioReader`: a damaged file is an error naming the frame); streams use
/// `.replaceWithZero` (`SeparationStream` as `mambasep stream` runs it: one bad sample must
/// not end a live stream nor poison the model's state).
public enum NonFiniteInput: Sendable {
    /// Throw `NonFiniteSample` at the first one.
    case reject
    /// Replace each by 0 and count them.
    case replaceWithZero

    /// Applies the policy to `samples`: returns how many were replaced (always 0 for `.reject`),
    /// or throws `NonFiniteSample` with the index of the first bad sample within `samples`.
    @discardableResult
    public func apply(to samples: inout [Float]) throws -> Int {
        switch self {
        case .reject:
            if let i = samples.firstIndex(where: { !$0.isFinite }) { throw NonFiniteSample(index: i, value: samples[i]) }
            return 0
        case .replaceWithZero:
            var replaced = 0
            for i in samples.indices where !samples[i].isFinite {
                samples[i] = 0
                replaced += 1
            }
            return replaced
        }
    }
}

/// The first NaN or ±Inf sample found under `NonFiniteInput.reject`.
public struct NonFiniteSample: Error, Equatable {
    /// Index within the block checked.
    public let index: Int
    public let value: Float
}

// MARK: - Clipping

/// Clamps samples beyond full scale to ±1 (NaN is left as it is) and returns how many there were.
/// Integer formats cannot hold them; `AudioWriter` and `PCMStreamWriter` both clip here.
@discardableResult
public func clipToFullScale(_ samples: inout [Float]) -> Int {
    var clipped = 0
    for i in samples.indices where abs(samples[i]) > 1 {
        samples[i] = samples[i] > 0 ? 1 : -1
        clipped += 1
    }
    return clipped
}
