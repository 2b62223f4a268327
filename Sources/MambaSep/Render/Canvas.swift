// A small drawing surface over Cairo (image surface, ARGB32): filled rectangles, lines, text
// through Cairo's toy text API, raster panels drawn pixel by pixel, and PNG output that appears
// only when complete. Also reads PNGs back (tests check sizes and pixels).

import CCairo
import Foundation

// MARK: - Errors

/// A drawing or PNG problem, one line naming the file when there is one.
public struct RenderError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension RenderError: LocalizedError {
    public var errorDescription: String? { message }
}

// MARK: - Canvas

/// An RGB drawing surface of `width × height` pixels, white to start with. Coordinates are
/// pixels from the top-left corner. Not thread-safe.
public final class Canvas {
    public let width: Int
    public let height: Int
    let surface: OpaquePointer
    let cr: OpaquePointer

    /// Text alignment relative to the anchor point.
    public enum Align { case left, center, right }

    public init(width: Int, height: Int) throws {
        guard width > 0, height > 0, width <= 32767, height <= 32767 else {
            throw RenderError("cannot draw a \(width) × \(height) image")
        }
        guard let s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(width), Int32(height)),
              cairo_surface_status(s) == CAIRO_STATUS_SUCCESS else {
            throw RenderError("Cairo could not create a \(width) × \(height) image")
        }
        guard let c = cairo_create(s), cairo_status(c) == CAIRO_STATUS_SUCCESS else {
            cairo_surface_destroy(s)
            throw RenderError("Cairo could not draw on a \(width) × \(height) image")
        }
        self.width = width
        self.height = height
        surface = s
        cr = c
        setColor(0xffffff)
        cairo_paint(cr)
        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
    }

    deinit {
        cairo_destroy(cr)
        cairo_surface_destroy(surface)
    }

    // MARK: Shapes and text

    /// Sets the colour for what follows, as 0xRRGGBB.
    public func setColor(_ rgb: UInt32) {
        cairo_set_source_rgb(cr, Double((rgb >> 16) & 0xff) / 255, Double((rgb >> 8) & 0xff) / 255, Double(rgb & 0xff) / 255)
    }

    /// Fills a rectangle.
    public func fill(x: Double, y: Double, width w: Double, height h: Double, color: UInt32) {
        setColor(color)
        cairo_rectangle(cr, x, y, w, h)
        cairo_fill(cr)
    }

    /// Outlines a rectangle with a 1-pixel line on pixel edges.
    public func frame(x: Double, y: Double, width w: Double, height h: Double, color: UInt32 = 0x000000) {
        setColor(color)
        cairo_set_line_width(cr, 1)
        cairo_rectangle(cr, x - 0.5, y - 0.5, w + 1, h + 1)
        cairo_stroke(cr)
    }

    /// A 1-pixel line.
    public func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, color: UInt32 = 0x000000) {
        setColor(color)
        cairo_set_line_width(cr, 1)
        cairo_move_to(cr, x0, y0)
        cairo_line_to(cr, x1, y1)
        cairo_stroke(cr)
    }

    /// Draws `text` of `size` pixels with its baseline's anchor at (x, y) (`vertical`: rotated a
    /// quarter turn anticlockwise, reading upwards); a smaller size when it would be wider than
    /// `maxWidth`.
    public func text(_ text: String, x: Double, y: Double, size: Double = 12, align: Align = .left,
                     bold: Bool = false, vertical: Bool = false, color: UInt32 = 0x000000, maxWidth: Double? = nil) {
        setColor(color)
        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(cr, size)
        var ext = cairo_text_extents_t()
        cairo_text_extents(cr, text, &ext)
        if let maxWidth, ext.x_advance > maxWidth, maxWidth > 0 {
            cairo_set_font_size(cr, size * maxWidth / ext.x_advance)
            cairo_text_extents(cr, text, &ext)
        }
        let shift: Double
        switch align {
        case .left: shift = 0
        case .center: shift = ext.x_advance / 2
        case .right: shift = ext.x_advance
        }
        cairo_save(cr)
        cairo_translate(cr, x, y)
        if vertical { cairo_rotate(cr, -Double.pi / 2) }
        cairo_move_to(cr, -shift, 0)
        cairo_show_text(cr, text)
        cairo_restore(cr)
    }

    // MARK: Raster

    /// Fills the `w × h` pixel block at (x, y) with `pixel(column, row)` (0xRRGGBB, row 0 on top),
    /// clipped to the canvas.
    public func raster(x: Int, y: Int, width w: Int, height h: Int, _ pixel: (_ column: Int, _ row: Int) -> UInt32) {
        cairo_surface_flush(surface)
        guard let data = cairo_image_surface_get_data(surface) else { return }
        let stride = Int(cairo_image_surface_get_stride(surface))
        for r in max(0, -y)..<max(0, min(h, height - y)) {
            let row = UnsafeMutableRawPointer(data + (y + r) * stride).assumingMemoryBound(to: UInt32.self)
            for c in max(0, -x)..<max(0, min(w, width - x)) { row[x + c] = 0xff00_0000 | pixel(c, r) }
        }
        cairo_surface_mark_dirty(surface)
    }

    // MARK: Output

    /// Writes the image as PNG to `path` (the whole file or nothing: see `writePNG(temporaryFor:)`).
    public func writePNG(to path: String) throws {
        let pending = PendingFiles()
        try pending.add(path) { try writePNGFile($0) }
        try pending.commit()
    }

    /// Writes the PNG to exactly `path` (no temporary file: use it inside `PendingFiles.add`).
    public func writePNGFile(_ path: String) throws {
        cairo_surface_flush(surface)
        let status = cairo_surface_write_to_png(surface, path)
        guard status == CAIRO_STATUS_SUCCESS else {
            throw RenderError("\(path): cannot write PNG (\(String(cString: cairo_status_to_string(status))))")
        }
    }
}

// MARK: - Files that appear together

/// Output files written beside their destinations (`.<name>.<random>.tmp`) and renamed into
/// place together by `commit()`; until then (or after `cancel()`, or if the object is dropped)
/// no destination is touched and the temporary files are removed.
///
/// While they exist the temporary files are registered with `InterruptCleanup`, so a program that
/// installs its handler loses them on Ctrl-C too.
public final class PendingFiles {
    private var files: [(temporary: String, destination: String, token: InterruptCleanup.Token?)] = []
    private var committed = false

    public init() {}

    deinit { if !committed { cancel() } }

    /// Writes a file through `write(temporaryPath)`; on error the temporary file is removed.
    public func add(_ destination: String, write: (String) throws -> Void) throws {
        let url = URL(fileURLWithPath: destination)
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: 0...UInt32.max)).tmp").path
        let token = InterruptCleanup.add(file: tmp)
        do {
            try write(tmp)
        } catch {
            unlink(tmp)
            InterruptCleanup.remove(token)
            throw error
        }
        files.append((tmp, destination, token))
    }

    /// Renames every temporary file to its destination.
    public func commit() throws {
        defer {
            files.forEach { InterruptCleanup.remove($0.token) }
            files = []
            committed = true
        }
        for (i, f) in files.enumerated() where rename(f.temporary, f.destination) != 0 {
            let reason = String(cString: strerror(errno))
            for g in files[i...] { unlink(g.temporary) }
            throw RenderError("\(f.destination): cannot rename the finished file into place (\(reason))")
        }
    }

    /// Removes the temporary files.
    public func cancel() {
        for f in files {
            unlink(f.temporary)
            InterruptCleanup.remove(f.token)
        }
        files = []
    }
}

// MARK: - Reading PNGs

/// A decoded PNG: `width × height` pixels as 0xAARRGGBB, row-major from the top-left corner.
public struct RasterImage: Sendable {
    public let width: Int
    public let height: Int
    public let pixels: [UInt32]

    /// Decodes the PNG at `path` with Cairo.
    public init(pngPath path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw RenderError("\(path): no such file") }
        guard let s = cairo_image_surface_create_from_png(path) else { throw RenderError("\(path): cannot read PNG") }
        defer { cairo_surface_destroy(s) }
        let status = cairo_surface_status(s)
        guard status == CAIRO_STATUS_SUCCESS else {
            throw RenderError("\(path): cannot read PNG (\(String(cString: cairo_status_to_string(status))))")
        }
        cairo_surface_flush(s)
        width = Int(cairo_image_surface_get_width(s))
        height = Int(cairo_image_surface_get_height(s))
        let stride = Int(cairo_image_surface_get_stride(s))
        guard let data = cairo_image_surface_get_data(s) else { throw RenderError("\(path): PNG has no pixels") }
        var px = [UInt32](repeating: 0, count: width * height)
        for r in 0..<height {
            let row = UnsafeRawPointer(data + r * stride).assumingMemoryBound(to: UInt32.self)
            for c in 0..<width { px[r * width + c] = row[c] }
        }
        pixels = px
    }

    /// The pixel at column `x`, row `y` as 8-bit red, green, blue.
    public func rgb(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let p = pixels[y * width + x]
        return (UInt8((p >> 16) & 0xff), UInt8((p >> 8) & 0xff), UInt8(p & 0xff))
    }
}
