// SwiftPM generates `Bundle.module` for the library's resources; the fuzzer build compiles the
// sources without SwiftPM, so it gets this stand-in (ModelStore checks the folder exists first).
import Foundation

extension Bundle {
    static let module = Bundle.main
}
