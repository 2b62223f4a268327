import Foundation
import XCTest
@testable import MambaSep

/// Reading, writing and format round trips.
final class AudioIOTests: XCTestCase {
    // MARK: - Round trips

    func testWAV16RoundTripWithinQuantisation() throws {
        let dir = try makeTempDir(self)
        let x = sine(440, rate: 8000, count: 8000)
        let p = dir.appendingPathComponent("a.wav").path
        try writeAudio(x, to: p, sampleRate: 8000)
        let info = try AudioFile.info(p)
        XCTAssertEqual(info.container, "WAV")
        XCTAssertEqual(info.encoding, "PCM_16")
        XCTAssertEqual(info.frameCount, 8000)
        let y = try AudioFile.read(p)
        XCTAssertEqual(y.sampleRate, 8000)
        XCTAssertEqual(y.samples.count, x.count)
        XCTAssertLessThanOrEqual(maxAbsError(x, y.samples), 1.0 / 32768 + 1e-6)
    }

    func testFloatWAVAndWAV24RoundTrip() throws {
        let dir = try makeTempDir(self)
        let x = sine(123, rate: 16000, count: 4000, amplitude: 0.9)
        let pf = dir.appendingPathComponent("f.wav").path
        try writeAudio(x, to: pf, sampleRate: 16000, format: .wavFloat)
        XCTAssertEqual(try AudioFile.info(pf).encoding, "FLOAT")
        XCTAssertEqual(try AudioFile.read(pf).samples, x, "float WAV must be bit exact")
        let p24 = dir.appendingPathComponent("i.wav").path
        try writeAudio(x, to: p24, sampleRate: 16000, format: .wav24)
        XCTAssertEqual(try AudioFile.info(p24).encoding, "PCM_24")
        XCTAssertLessThan(maxAbsError(x, try AudioFile.read(p24).samples), 1e-6)
    }

    func testFLACRoundTrip() throws {
        let dir = try makeTempDir(self)
        let x = sine(300, rate: 8000, count: 12000)
        let p = dir.appendingPathComponent("a.flac").path
        try writeAudio(x, to: p, sampleRate: 8000) // format from the extension
        XCTAssertEqual(try AudioFile.info(p).container, "FLAC")
        let y = try AudioFile.read(p)
        XCTAssertEqual(y.samples.count, x.count)
        XCTAssertLessThanOrEqual(maxAbsError(x, y.samples), 1.0 / 32768 + 1e-6)
    }

    /// Lossy codecs: the decoded signal must match in length and stay close (SNR > 20 dB).
    func testOggVorbisAndOpusRoundTrip() throws {
        let dir = try makeTempDir(self)
        for (fmt, rate, name) in [(AudioFileFormat.oggVorbis, 16000, "a.ogg"), (.oggOpus, 16000, "a.opus")] {
            let x = sine(440, rate: rate, count: rate)
            let p = dir.appendingPathComponent(name).path
            try writeAudio(x, to: p, sampleRate: rate, format: fmt)
            let info = try AudioFile.info(p)
            XCTAssertEqual(info.container, "OGG", name)
            XCTAssertEqual(info.encoding, fmt == .oggOpus ? "OPUS" : "VORBIS", name)
            let y = try AudioFile.read(p)
            XCTAssertEqual(y.sampleRate, rate)
            XCTAssertEqual(y.samples.count, x.count, name)
            // Compare the middle to skip codec start-up.
            let a = Array(x[2000..<14000]), b = Array(y.samples[2000..<14000])
            var sig = 0.0, err = 0.0
            for i in a.indices { sig += Double(a[i] * a[i]); err += Double((a[i] - b[i]) * (a[i] - b[i])) }
            XCTAssertGreaterThan(10 * log10(sig / err), 20, "\(name) round trip too lossy")
        }
    }

    func testOpusRejectsOddRates() throws {
        let dir = try makeTempDir(self)
        XCTAssertThrowsError(try AudioWriter(path: dir.appendingPathComponent("x.opus").path,
                                             sampleRate: 22050, format: .oggOpus)) { err in
            XCTAssertEqual((err as? AudioError)?.kind, .unsupported)
        }
    }

    // MARK: - Channels and blocks

    func testStereoDownmixAndChannelPick() throws {
        let dir = try makeTempDir(self)
        let l = sine(200, rate: 8000, count: 1000, amplitude: 0.4)
        let r = sine(500, rate: 8000, count: 1000, amplitude: 0.2)
        let p = dir.appendingPathComponent("st.wav").path
        try writeAudio(channels: [l, r], to: p, sampleRate: 8000, format: .wavFloat)
        XCTAssertEqual(try AudioFile.info(p).channels, 2)
        let mix = try AudioFile.read(p).samples
        XCTAssertLessThan(maxAbsError(mix, zip(l, r).map { ($0 + $1) / 2 }), 1e-7)
        XCTAssertEqual(try AudioFile.read(p, channel: .channel(1)).samples, r)
        XCTAssertEqual(try AudioFile.read(p, channel: .channel(0)).samples, l)
        let planar = try AudioFile.readChannels(p)
        XCTAssertEqual(planar.channels, [l, r])
        XCTAssertThrowsError(try AudioReader(path: p, channel: .channel(2))) { err in
            XCTAssertEqual((err as? AudioError)?.kind, .invalidArgument)
            XCTAssertTrue("\(err)".contains("2 channel"), "\(err)")
        }
    }

    func testBlockReadsConcatenateToWholeFile() throws {
        let dir = try makeTempDir(self)
        let x = sine(310, rate: 8000, count: 10007)
        let p = dir.appendingPathComponent("b.wav").path
        try writeAudio(x, to: p, sampleRate: 8000, format: .wavFloat)
        let r = try AudioReader(path: p)
        XCTAssertEqual(r.frameCount, 10007)
        var got: [Float] = []
        var blocks = 0
        while true {
            let b = try r.read(maxFrames: 1000)
            if b.isEmpty { break }
            XCTAssertLessThanOrEqual(b.count, 1000)
            got += b
            blocks += 1
        }
        XCTAssertEqual(blocks, 11)
        XCTAssertEqual(got, x)
        XCTAssertEqual(r.framesRead, 10007)
        XCTAssertEqual(try r.read(maxFrames: 10), [], "reads after the end stay empty")
        XCTAssertThrowsError(try AudioReader(path: p).read(maxFrames: 0))
    }

    func testOtherContainersRead() throws {
        // AIFF and 8-bit/u-law WAV written by sox, when sox is present: libsndfile must read them.
        let dir = try makeTempDir(self)
        let src = dir.appendingPathComponent("s.wav").path
        try writeAudio(sine(440, rate: 8000, count: 800), to: src, sampleRate: 8000)
        for (name, extra) in [("a.aiff", [String]()), ("u.wav", ["-e", "u-law"]), ("b8.wav", ["-b", "8"])] {
            let out = dir.appendingPathComponent(name).path
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: "/usr/bin/sox")
            proc.arguments = [src] + extra + [out]
            guard (try? proc.run()) != nil else { throw XCTSkip("sox not installed") }
            proc.waitUntilExit()
            let y = try AudioFile.read(out)
            XCTAssertEqual(y.samples.count, 800, name)
            XCTAssertLessThan(maxAbsError(y.samples, sine(440, rate: 8000, count: 800)), 0.03, name)
        }
    }

    // MARK: - Writer behaviour

    func testWriterUsesTemporaryFileUntilFinish() throws {
        let dir = try makeTempDir(self)
        let p = dir.appendingPathComponent("out.wav").path
        let w = try AudioWriter(path: p, sampleRate: 8000)
        try w.write(interleaved: [0.1, 0.2, 0.3])
        XCTAssertFalse(FileManager.default.fileExists(atPath: p))
        XCTAssertTrue(FileManager.default.fileExists(atPath: w.temporaryPath))
        XCTAssertEqual((w.temporaryPath as NSString).deletingLastPathComponent, dir.path)
        try w.finish()
        XCTAssertTrue(FileManager.default.fileExists(atPath: p))
        XCTAssertFalse(FileManager.default.fileExists(atPath: w.temporaryPath))
        XCTAssertEqual(try AudioFile.read(p).samples.count, 3)
        XCTAssertThrowsError(try w.write(interleaved: [0]))
    }

    func testUnfinishedTemporaryFilesAreRegisteredForInterruptCleanup() throws {
        let dir = try makeTempDir(self)
        let a = try AudioWriter(path: dir.appendingPathComponent("a.wav").path, sampleRate: 8000)
        let b = try AudioWriter(path: dir.appendingPathComponent("b.wav").path, sampleRate: 8000)
        XCTAssertTrue(Set(InterruptCleanup.registered).isSuperset(of: [a.temporaryPath, b.temporaryPath]))
        try a.finish()
        b.cancel()
        XCTAssertFalse(InterruptCleanup.registered.contains(a.temporaryPath))
        XCTAssertFalse(InterruptCleanup.registered.contains(b.temporaryPath))
    }

    func testWriterCancelRemovesTemporaryAndKeepsOldFile() throws {
        let dir = try makeTempDir(self)
        let p = dir.appendingPathComponent("keep.wav").path
        try writeAudio([0.5, 0.5], to: p, sampleRate: 8000)
        let w = try AudioWriter(path: p, sampleRate: 8000)
        try w.write(interleaved: [Float](repeating: 0.1, count: 100))
        let tmp = w.temporaryPath
        w.cancel()
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp))
        XCTAssertEqual(try AudioFile.read(p).samples.count, 2, "old file untouched")
        let contents = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(contents, ["keep.wav"])
    }

    func testWriterClipsPCMAndRejectsNonFinite() throws {
        let dir = try makeTempDir(self)
        let p = dir.appendingPathComponent("c.wav").path
        try writeAudio([2, -3, 0.5], to: p, sampleRate: 8000)
        let y = try AudioFile.read(p).samples
        XCTAssertEqual(y[0], 1, accuracy: 1e-4)
        XCTAssertEqual(y[1], -1, accuracy: 1e-4)
        // The writer counts what it clipped; float WAV keeps samples beyond full scale.
        let pcm = try AudioWriter(path: dir.appendingPathComponent("k.wav").path, sampleRate: 8000)
        try pcm.write(interleaved: [2, -3, 0.5, 1, -1])
        try pcm.write(interleaved: [1.0001])
        XCTAssertEqual(pcm.clippedSamples, 3)
        try pcm.finish()
        let fp = dir.appendingPathComponent("f.wav").path
        let fw = try AudioWriter(path: fp, sampleRate: 8000, format: .wavFloat)
        try fw.write(interleaved: [2, -3, 0.5])
        XCTAssertEqual(fw.clippedSamples, 0)
        try fw.finish()
        XCTAssertEqual(try AudioFile.read(fp).samples, [2, -3, 0.5])
        let w = try AudioWriter(path: dir.appendingPathComponent("n.wav").path, sampleRate: 8000)
        XCTAssertThrowsError(try w.write(interleaved: [0, .nan])) { err in
            XCTAssertEqual((err as? AudioError)?.kind, .nonFinite)
        }
        w.cancel()
    }

    func testWriterBadDestinations() throws {
        let dir = try makeTempDir(self)
        XCTAssertThrowsError(try writeAudio([0], to: dir.appendingPathComponent("nope/x.wav").path, sampleRate: 8000)) {
            XCTAssertEqual(($0 as? AudioError)?.kind, .missing)
        }
        XCTAssertThrowsError(try writeAudio([0], to: dir.path, sampleRate: 8000)) {
            XCTAssertEqual(($0 as? AudioError)?.kind, .isDirectory)
        }
        XCTAssertThrowsError(try writeAudio([0], to: dir.appendingPathComponent("z.wav").path, sampleRate: 0))
    }
}

/// Standard input is `PCMStreamReader`'s job (see PCMStreamTests); AudioReader refuses "-" clearly.
final class AudioStandardInputTests: XCTestCase {
    func testDashIsRedirectedToTheStreamReader() {
        XCTAssertThrowsError(try AudioReader(path: "-")) {
            let e = $0 as? AudioError
            XCTAssertEqual(e?.kind, .invalidArgument)
            XCTAssertTrue(e?.description.contains("PCMStreamReader") ?? false, "\($0)")
        }
    }
}
