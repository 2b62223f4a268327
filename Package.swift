// swift-tools-version:5.9
import PackageDescription

/// Release builds: `-Ounchecked` and a real target CPU, without which SIMD code is ~100× slower.
let fastFlags: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release)),
    .unsafeFlags(["-target-cpu", "haswell"], .when(configuration: .debug)),
]
/// The library in debug builds (what `swift test` runs): `-O`, which keeps every bounds and
/// overflow check, so that tests through the real model take seconds instead of minutes.
let libraryFlags: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release)),
    .unsafeFlags(["-O", "-target-cpu", "haswell"], .when(configuration: .debug)),
]

let package = Package(
    name: "mambasep",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "MambaSep", targets: ["MambaSep"]),
        .executable(name: "mambasep", targets: ["mambasep"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile",
                       providers: [.apt(["libsndfile1-dev"]), .brew(["libsndfile"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f",
                       providers: [.apt(["libfftw3-dev"]), .brew(["fftw"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),
        .systemLibrary(name: "CSoxr", pkgConfig: "soxr",
                       providers: [.apt(["libsoxr-dev"]), .brew(["libsoxr"])]),
        .systemLibrary(name: "CCairo", pkgConfig: "cairo",
                       providers: [.apt(["libcairo2-dev"]), .brew(["cairo"])]),
        .target(
            name: "MambaSep",
            dependencies: ["CSndFile", "CFFTW", "COpenBLAS", "CSoxr", "CCairo"],
            resources: [.copy("Resources")],
            swiftSettings: libraryFlags
        ),
        .executableTarget(
            name: "mambasep",
            dependencies: [
                "MambaSep",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fastFlags
        ),
        .testTarget(
            name: "MambaSepTests",
            dependencies: ["MambaSep"],
            swiftSettings: fastFlags
        ),
    ]
)
