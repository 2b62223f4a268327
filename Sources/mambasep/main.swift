import ArgumentParser
import MambaSep

// MARK: - Root command

/// `mambasep`: the root command; its subcommands do the work.
struct MambaSepCommand: ParsableCommand {
    /// Every subcommand of the tool, in the order `--help` lists them.
    /// Add new commands (Separate, Stream, Info, ...) here and nowhere else.
    static let subcommandList: [ParsableCommand.Type] = [
        SeparateCommand.self,
        StreamCommand.self,
        EvalCommand.self,
        ExplainCommand.self,
        InfoCommand.self,
    ]

    static let configuration = CommandConfiguration(
        commandName: "mambasep",
        abstract: "Speech separation with a Dual-path Mamba network: one file per speaker, SI-SNR scoring, and pictures of what the model does.",
        version: MambaSepInfo.version,
        subcommands: subcommandList
    )
}

MambaSepCommand.main()
