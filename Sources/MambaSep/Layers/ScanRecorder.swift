// An optional observer of the selective scans' operands (Δ, B, C, x) during a real forward pass,
// for `explain`'s hidden-attention maps. With no recorder the forward pass does one `nil` check
// per scan direction and sequence group, nothing else.
//
// Glossary (docs/MODEL.md): `G` sequences in a group, `L'` their length, `E` channels (Mamba inner
// width), `M` state size, `R` dt rank.

// MARK: - Layer names

/// The two paths of a dual-path block.
public enum PathKind: String, CaseIterable, Sendable, Codable {
    /// Inside each chunk: `S` sequences of `K` frames.
    case intra
    /// Across chunks: `K` sequences of `S` chunks (sequence k holds frame k of every chunk).
    case inter
}

/// One path layer of the masker, `masker.blocks.{block}.{path}`.
public struct MambaLayerID: Hashable, Sendable, CustomStringConvertible {
    public let block: Int
    public let path: PathKind
    public init(block: Int, path: PathKind) {
        self.block = block
        self.path = path
    }
    /// The state-dict prefix of the layer's mixer, e.g. `masker.blocks.3.intra.mixer`.
    public var description: String { "masker.blocks.\(block).\(path.rawValue).mixer" }
}

// MARK: - Recorder

/// Receives the scan operands of chosen BiMamba layers during `DPMamba.forward`.
///
/// `record` is called once per direction and group of sequences, on the worker thread that runs
/// that group (so possibly concurrently), after Δ, B and C are computed and before the scan. The
/// pointers in `ScanGroup` are valid only during the call: copy or reduce what you need there.
public protocol ScanRecorder: AnyObject {
    /// Whether to record `layer`; asked once per layer and forward pass, before it runs.
    func records(_ layer: MambaLayerID) -> Bool
    /// One direction's operands for `group.sequences` consecutive sequences of `group.layer`.
    func record(_ group: ScanGroup)
}

/// A recorder bound to one layer and to the first sequence of the group being run: what a path
/// layer hands its mixer.
public struct ScanTap {
    public let recorder: ScanRecorder
    public let layer: MambaLayerID
    /// Index, within the layer, of the group's first sequence.
    public let firstSequence: Int

    public init(recorder: ScanRecorder, layer: MambaLayerID, firstSequence: Int = 0) {
        self.recorder = recorder
        self.layer = layer
        self.firstSequence = firstSequence
    }

    /// The same tap for a group starting `offset` sequences further.
    public func advanced(by offset: Int) -> ScanTap {
        ScanTap(recorder: recorder, layer: layer, firstSequence: firstSequence + offset)
    }
}

/// One scan direction's operands for `G` sequences of length `L'` (valid only during
/// `ScanRecorder.record`). Sequence `i` of the group is sequence `firstSequence + i` of the layer.
public struct ScanGroup {
    public let layer: MambaLayerID
    /// The backward direction (scanned from the last step to the first).
    public let reverse: Bool
    public let firstSequence: Int
    public let sequences: Int          // G
    public let length: Int             // L'
    public let channels: Int           // E
    public let states: Int             // M
    let x: UnsafePointer<Float>        // [G·L', E] conv + SiLU output
    let delta: UnsafePointer<Float>    // [G·L', E] Δ after softplus
    let dbc: UnsafePointer<Float>      // [G·L', R+2M] x_proj output: dt | B | C
    let rank: Int                      // R
    let aT: UnsafePointer<Float>       // [M, E] A·log2(e)
    let d: UnsafePointer<Float>        // [E]

    /// The scan operands of sequence `i` of the group (`0 ≤ i < G`), as the engine's scan reads them.
    public func operands(_ i: Int) -> ScanOperands {
        precondition(i >= 0 && i < sequences, "sequence \(i) outside a group of \(sequences)")
        let rows = i * length, ldbc = rank + 2 * states
        return ScanOperands(x: x + rows * channels, ldx: channels, delta: delta + rows * channels, ldDelta: channels,
                            bc: dbc + rows * ldbc + rank, ldbc: ldbc, aT: aT, d: d)
    }
}
