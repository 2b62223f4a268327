import XCTest
@testable import MambaSep
final class SmokeTests: XCTestCase { func testVersion() { XCTAssertFalse(MambaSepInfo.version.isEmpty) } }
