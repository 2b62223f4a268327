import Foundation
import XCTest
@testable import MambaSep

/// The FFTW spectrogram against its direct-DFT reference, and its golden values: where a pure
/// tone peaks and at what level.
final class SpectrogramTests: XCTestCase {
    func testFFTWMatchesTheDirectDFT() {
        var rng = SeededRandom(seed: 61)
        // 70 frames: more than one batch of 32, and a partial last batch.
        let x = rng.floats(70 * 16 - 5, -1, 1)
        let fast = spectrogram(x, sampleRate: 8000, fftSize: 64, hop: 16)
        let ref = spectrogramReference(x, sampleRate: 8000, fftSize: 64, hop: 16)
        XCTAssertEqual(fast.frames, x.count / 16 + 1)
        XCTAssertEqual(fast.bins, 33)
        XCTAssertEqual(fast.frames, ref.frames)
        XCTAssertLessThan(zip(fast.decibels, ref.decibels).map { abs($0 - $1) }.max()!, 1e-3)
    }

    func testPureTonePeaksOnItsBinAtZeroDecibelsFullScale() {
        // 1 kHz at 8 kHz with F = 256: bin 1000·256/8000 = 32 exactly.
        let x = sine(1000, rate: 8000, count: 8000, amplitude: 1)
        let sp = spectrogram(x, sampleRate: 8000)
        XCTAssertEqual(sp.fftSize, 256)
        XCTAssertEqual(sp.hop, 64)
        XCTAssertEqual(sp.frequency(ofBin: 32), 1000)
        for f in [10, 60, 110] {
            let row = (0..<sp.bins).map { sp[frame: f, bin: $0] }
            let peak = row.indices.max { row[$0] < row[$1] }!
            XCTAssertEqual(peak, 32, "frame \(f)")
            XCTAssertEqual(row[peak], 0, accuracy: 0.01, "a full-scale sine reads 0 dBFS")
            XCTAssertLessThan(row[40], -60, "far bins are down by the Hann window's sidelobes")
        }
        XCTAssertEqual(sp.time(ofFrame: 125), 1.0)
        // Half amplitude is 6 dB down.
        let half = spectrogram(sine(1000, rate: 8000, count: 4000, amplitude: 0.5), sampleRate: 8000)
        XCTAssertEqual(half[frame: 30, bin: 32], -6.02, accuracy: 0.01)
    }

    func testSilenceEmptyAndDefaultSizes() {
        let silent = spectrogram([Float](repeating: 0, count: 1000), sampleRate: 16000)
        XCTAssertEqual(silent.fftSize, 512)
        XCTAssertTrue(silent.decibels.allSatisfy { $0 == Spectrogram.floorDecibels })
        XCTAssertEqual(spectrogram([], sampleRate: 8000).frames, 0)
        XCTAssertEqual(Spectrogram.defaultFFTSize(sampleRate: 44100), 1024)
        XCTAssertEqual(hannWindow(4), [0, 0.5, 1, 0.5])
    }
}
