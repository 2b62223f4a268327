// Viridis, the perceptually uniform colour map of van der Walt & Smith (matplotlib 1.5/2.0,
// CC0): lightness rises monotonically from dark violet to yellow, and it reads correctly in grey
// and for the common forms of colour blindness.
//
// The table below samples the published 256-entry definition at i/32 (33 anchors, written as
// 0xRRGGBB); colours in between are linear interpolations in sRGB, within 2.5/255 per channel of
// the full table.

import Foundation

// MARK: - Viridis

/// Maps values in [0, 1] to viridis colours.
public enum Viridis {
    static let anchors: [UInt32] = [
        0x440154, 0x470d60, 0x48186a, 0x482374, 0x472d7b, 0x453781, 0x424086, 0x3e4989,
        0x3b528b, 0x375b8d, 0x33638d, 0x2f6b8e, 0x2c728e, 0x297a8e, 0x26828e, 0x23898e,
        0x21918c, 0x1f988b, 0x1fa088, 0x22a785, 0x28ae80, 0x32b67a, 0x3fbc73, 0x4ec36b,
        0x5ec962, 0x70cf57, 0x84d44b, 0x98d83e, 0xaddc30, 0xc2df23, 0xd8e219, 0xece51b,
        0xfde725,
    ]

    /// The colour of `v` (clamped to [0, 1]; NaN maps to 0) as 8-bit red, green, blue.
    public static func rgb(_ v: Double) -> (r: UInt8, g: UInt8, b: UInt8) {
        let x = v.isNaN ? 0 : min(max(v, 0), 1) * Double(anchors.count - 1)
        let i = min(Int(x), anchors.count - 2), f = x - Double(i)
        func channel(_ shift: UInt32) -> UInt8 {
            let a = Double((anchors[i] >> shift) & 0xff), b = Double((anchors[i + 1] >> shift) & 0xff)
            return UInt8((a + (b - a) * f).rounded())
        }
        return (channel(16), channel(8), channel(0))
    }

    /// The colour of `v` as an opaque ARGB32 pixel (Cairo's image format).
    public static func pixel(_ v: Double) -> UInt32 {
        let c = rgb(v)
        return 0xff00_0000 | UInt32(c.r) << 16 | UInt32(c.g) << 8 | UInt32(c.b)
    }
}

/// Relative luminance (Rec. 709 weights on linearised sRGB) of an 8-bit colour, 0…1.
public func relativeLuminance(r: UInt8, g: UInt8, b: UInt8) -> Double {
    func linear(_ c: UInt8) -> Double {
        let v = Double(c) / 255
        return v <= 0.040_45 ? v / 12.92 : Foundation.pow((v + 0.055) / 1.055, 2.4)
    }
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}
