import ArgumentParser
import MambaSep

struct Root: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mambasep", abstract: "Speech separation.")
}
Root.main()
