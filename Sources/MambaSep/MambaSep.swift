/// mambasep: speech separation with a Dual-path Mamba network.
public enum MambaSepInfo {
    public static let version = "0.1.0"
}
