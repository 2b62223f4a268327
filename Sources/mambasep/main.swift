import ArgumentParser
import Foundation
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

/// The options that take a number (and `--shard K/N`, so that `--shard -1/4` reaches its check).
/// ArgumentParser reads `-1` after one of them as an unknown option ("Missing value for
/// '--window'"); `--window=-1` reaches the option's own validation.
let numericOptions: Set<String> = ["--window", "--overlap", "--block", "--lookahead", "--threads",
                                   "--rate", "--channels", "--channel", "--start", "--duration", "--chunk", "--width",
                                   "--shard"]

/// `args` with `--OPTION -NUMBER` pairs joined as `--OPTION=-NUMBER` for the numeric options.
func joiningNegativeNumbers(_ args: [String]) -> [String] {
    var out: [String] = []
    var i = 0
    while i < args.count {
        let a = args[i]
        if numericOptions.contains(a), i + 1 < args.count, args[i + 1].range(of: #"^-\.?[0-9]"#, options: .regularExpression) != nil {
            out.append("\(a)=\(args[i + 1])")
            i += 2
        } else {
            out.append(a)
            i += 1
        }
    }
    return out
}

MambaSepCommand.main(joiningNegativeNumbers(Array(CommandLine.arguments.dropFirst())))
