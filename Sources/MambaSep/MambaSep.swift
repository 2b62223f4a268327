/// mambasep: speech separation with a Dual-path Mamba network.
///
/// The library's parts (see README.md and docs/MODEL.md):
/// - Audio: `AudioReader` (libsndfile block reader, mono mix or one channel), `Resampler`
///   (libsoxr, whole-buffer and streaming), `AudioWriter` / `writeAudio` (temporary file renamed
///   into place), `AudioFile` helpers, `AudioError`.
/// - Metrics: `Metrics.siSNR`, `Metrics.permutationInvariant` (SI-SNR/SI-SNRi with the best
///   speaker assignment), `Assignment` (permutations / Hungarian), `FileEvaluation`,
///   `EvalDataset` (LibriMix-style folders).
/// - Tensor, Layers, Model, Separation, DSP: the network and the separation engine.
public enum MambaSepInfo {
    /// The version `mambasep --version` prints.
    public static let version = "0.1.0"
}
