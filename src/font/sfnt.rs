//! A subset of the face font as a standalone OpenType (CFF) font file, for formats that embed a
//! font file rather than a bare font program (the OFD's `FontFile`). Built from the fast
//! CID-keyed CFF subset ([`super::subset`]) plus the tables an OpenType font needs (OpenType
//! 1.9: `CFF `, `OS/2`, `cmap`, `head`, `hhea`, `hmtx`, `maxp`, `name`, `post`), so a page's
//! font costs a copy of its glyphs, not a pass of a general subsetter.
//!
//! Glyph 0 is `.notdef`, then the used glyphs in ascending original glyph id; the `cmap`
//! (format 4 for the BMP, format 12 for everything) maps each used character to its new glyph.

use std::collections::BTreeMap;

use super::FaceFont;

/// The subset of `font` drawing the glyphs `used` (original glyph id → the text it stands
/// for) as an OpenType font file; `None` when the face has no CID-keyed CFF outlines or a
/// glyph cannot be subset (the caller then uses a general subsetter).
pub fn opentype_subset(font: &FaceFont, used: &BTreeMap<u16, String>) -> Option<Vec<u8>> {
    let gids: Vec<u16> = used.keys().copied().filter(|g| *g != 0).collect();
    let cff_table = font.cid_cff()?.subset(&gids).ok()?;
    opentype_from_cff(font, used, &cff_table)
}

/// As [`opentype_subset`], around `cff_table`, the CID-keyed CFF subset of `used` already
/// made (`CidCff::subset` of the used glyphs but `.notdef`, ascending), so that a page
/// embedded in several formats subsets its font once. `None` as for [`opentype_subset`].
pub fn opentype_from_cff(
    font: &FaceFont,
    used: &BTreeMap<u16, String>,
    cff_table: &[u8],
) -> Option<Vec<u8>> {
    let gids: Vec<u16> = used.keys().copied().filter(|g| *g != 0).collect();
    let num_glyphs = u16::try_from(gids.len() + 1).ok()?;
    let parsed = font.parsed();
    // New glyph id of each used glyph, and the characters that map to it.
    let mut chars: BTreeMap<u32, u16> = BTreeMap::new();
    for (i, gid) in gids.iter().enumerate() {
        let new = u16::try_from(i + 1).ok()?;
        for c in used.get(gid)?.chars() {
            chars.entry(c as u32).or_insert(new);
        }
    }
    let advances: Vec<u16> = std::iter::once(0)
        .chain(gids.iter().copied())
        .map(|g| parsed.get_horizontal_advance(g))
        .collect();
    let upm = font.units_per_em();
    let ascent = parsed.font_metrics.ascent.round() as i16;
    let descent = parsed.font_metrics.descent.round() as i16;
    let m = &parsed.pdf_font_metrics;
    let bbox = [m.x_min, m.y_min, m.x_max, m.y_max];
    let max_advance = advances.iter().copied().max().unwrap_or(0);

    let (os2, cmap, head, hhea) = (
        os2(ascent, descent, &chars, max_advance),
        cmap(&chars),
        head(upm, bbox),
        hhea(ascent, descent, max_advance, num_glyphs),
    );
    let hmtx: Vec<u8> = advances.iter().flat_map(|a| [a.to_be_bytes(), [0, 0]]).flatten().collect();
    let maxp = [0x0000_5000u32.to_be_bytes().as_slice(), &num_glyphs.to_be_bytes()].concat();
    let (name, post) = (name(font.name()), post());
    // Sorted by tag, as the table directory must be.
    let tables: [(&[u8; 4], &[u8]); 9] = [
        (b"CFF ", cff_table),
        (b"OS/2", &os2),
        (b"cmap", &cmap),
        (b"head", &head),
        (b"hhea", &hhea),
        (b"hmtx", &hmtx),
        (b"maxp", &maxp),
        (b"name", &name),
        (b"post", &post),
    ];
    Some(assemble(&tables))
}

fn os2(ascent: i16, descent: i16, chars: &BTreeMap<u32, u16>, max_advance: u16) -> Vec<u8> {
    let first = chars.keys().next().copied().unwrap_or(0x20).min(0xFFFF) as u16;
    let last = chars.keys().next_back().copied().unwrap_or(0x20).min(0xFFFF) as u16;
    let mut t = Vec::with_capacity(96);
    t.extend(4u16.to_be_bytes()); // version
    t.extend((max_advance / 2).to_be_bytes()); // xAvgCharWidth (approximate)
    t.extend(400u16.to_be_bytes()); // usWeightClass
    t.extend(5u16.to_be_bytes()); // usWidthClass
    t.extend(0u16.to_be_bytes()); // fsType: installable
    for v in [650i16, 600, 0, 75, 650, 600, 0, 350, 50, 250] {
        t.extend(v.to_be_bytes()); // sub/superscript sizes and offsets, strikeout
    }
    t.extend(0i16.to_be_bytes()); // sFamilyClass
    t.extend([0u8; 10]); // panose
    // ulUnicodeRange1..4: Basic Latin, CJK Unified Ideographs, CJK Symbols.
    t.extend(1u32.to_be_bytes());
    t.extend(((1u32 << 27) | (1 << 16)).to_be_bytes());
    t.extend(0u32.to_be_bytes());
    t.extend(0u32.to_be_bytes());
    t.extend(*b"ELIC"); // achVendID
    t.extend(0x0040u16.to_be_bytes()); // fsSelection: REGULAR
    t.extend(first.to_be_bytes());
    t.extend(last.to_be_bytes());
    t.extend(ascent.to_be_bytes()); // sTypoAscender
    t.extend(descent.to_be_bytes()); // sTypoDescender
    t.extend(0i16.to_be_bytes()); // sTypoLineGap
    t.extend(ascent.unsigned_abs().to_be_bytes()); // usWinAscent
    t.extend(descent.unsigned_abs().to_be_bytes()); // usWinDescent
    t.extend((1u32 | (1 << 18)).to_be_bytes()); // ulCodePageRange1: Latin 1, Chinese simplified
    t.extend(0u32.to_be_bytes());
    t.extend(0i16.to_be_bytes()); // sxHeight
    t.extend(0i16.to_be_bytes()); // sCapHeight
    t.extend(0u16.to_be_bytes()); // usDefaultChar
    t.extend(0x20u16.to_be_bytes()); // usBreakChar
    t.extend(1u16.to_be_bytes()); // usMaxContext
    t
}

/// `cmap` with a format 4 subtable (3,1) for the BMP and a format 12 subtable (3,10) for all.
fn cmap(chars: &BTreeMap<u32, u16>) -> Vec<u8> {
    let bmp: Vec<(u16, u16)> =
        chars.iter().filter_map(|(c, g)| u16::try_from(*c).ok().map(|c| (c, *g))).collect();
    // Format 4: one segment per character, then the 0xFFFF end segment.
    let seg_count = u16::try_from(bmp.len() + 1).unwrap_or(u16::MAX);
    let mut f4 = Vec::new();
    let floor_pow2 = 1u16 << (15 - seg_count.leading_zeros());
    let search = 2 * floor_pow2;
    let entry_selector = floor_pow2.trailing_zeros() as u16;
    let len = 16 + 8 * u32::from(seg_count);
    for v in [4u16, len as u16, 0, seg_count * 2, search, entry_selector, seg_count * 2 - search] {
        f4.extend(v.to_be_bytes());
    }
    for (c, _) in &bmp {
        f4.extend(c.to_be_bytes()); // endCode
    }
    f4.extend(0xFFFFu16.to_be_bytes());
    f4.extend(0u16.to_be_bytes()); // reservedPad
    for (c, _) in &bmp {
        f4.extend(c.to_be_bytes()); // startCode
    }
    f4.extend(0xFFFFu16.to_be_bytes());
    for (c, g) in &bmp {
        f4.extend(g.wrapping_sub(*c).to_be_bytes()); // idDelta
    }
    f4.extend(1u16.to_be_bytes());
    for _ in 0..seg_count {
        f4.extend(0u16.to_be_bytes()); // idRangeOffset
    }
    // Format 12: one group per character.
    let mut f12 = Vec::new();
    f12.extend(12u16.to_be_bytes());
    f12.extend(0u16.to_be_bytes());
    f12.extend((16 + 12 * chars.len() as u32).to_be_bytes());
    f12.extend(0u32.to_be_bytes()); // language
    f12.extend((chars.len() as u32).to_be_bytes());
    for (c, g) in chars {
        f12.extend(c.to_be_bytes());
        f12.extend(c.to_be_bytes());
        f12.extend(u32::from(*g).to_be_bytes());
    }
    let mut t = Vec::new();
    t.extend(0u16.to_be_bytes()); // version
    t.extend(2u16.to_be_bytes()); // numTables
    let first = 4 + 2 * 8;
    for (encoding, offset) in [(1u16, first), (10, first + f4.len() as u32)] {
        t.extend(3u16.to_be_bytes());
        t.extend(encoding.to_be_bytes());
        t.extend(offset.to_be_bytes());
    }
    t.extend(f4);
    t.extend(f12);
    t
}

fn head(upm: u16, bbox: [i16; 4]) -> Vec<u8> {
    let mut t = Vec::with_capacity(54);
    t.extend(0x0001_0000u32.to_be_bytes()); // version
    t.extend(0x0001_0000u32.to_be_bytes()); // fontRevision
    t.extend(0u32.to_be_bytes()); // checksumAdjustment, set by `assemble`
    t.extend(0x5F0F_3CF5u32.to_be_bytes()); // magicNumber
    t.extend(0x0003u16.to_be_bytes()); // flags: baseline at y=0, lsb at x=0
    t.extend(upm.to_be_bytes());
    t.extend(0u64.to_be_bytes()); // created (fixed: reproducible output)
    t.extend(0u64.to_be_bytes()); // modified
    for v in bbox {
        t.extend(v.to_be_bytes());
    }
    t.extend(0u16.to_be_bytes()); // macStyle
    t.extend(8u16.to_be_bytes()); // lowestRecPPEM
    t.extend(2i16.to_be_bytes()); // fontDirectionHint
    t.extend(0i16.to_be_bytes()); // indexToLocFormat
    t.extend(0i16.to_be_bytes()); // glyphDataFormat
    t
}

fn hhea(ascent: i16, descent: i16, max_advance: u16, num_glyphs: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(36);
    t.extend(0x0001_0000u32.to_be_bytes());
    t.extend(ascent.to_be_bytes());
    t.extend(descent.to_be_bytes());
    t.extend(0i16.to_be_bytes()); // lineGap
    t.extend(max_advance.to_be_bytes());
    t.extend(0i16.to_be_bytes()); // minLeftSideBearing
    t.extend(0i16.to_be_bytes()); // minRightSideBearing
    t.extend((max_advance as i16).to_be_bytes()); // xMaxExtent
    t.extend(1i16.to_be_bytes()); // caretSlopeRise
    t.extend(0i16.to_be_bytes()); // caretSlopeRun
    t.extend(0i16.to_be_bytes()); // caretOffset
    t.extend([0u8; 8]); // reserved
    t.extend(0i16.to_be_bytes()); // metricDataFormat
    t.extend(num_glyphs.to_be_bytes()); // numberOfHMetrics
    t
}

/// `name` with family, subfamily, full name and PostScript name (platform 3, UTF-16BE).
fn name(ps_name: &str) -> Vec<u8> {
    let family = ps_name.split('-').next().unwrap_or(ps_name);
    let records: [(u16, &str); 4] = [(1, family), (2, "Regular"), (4, ps_name), (6, ps_name)];
    let strings: Vec<Vec<u8>> = records
        .iter()
        .map(|(_, s)| s.encode_utf16().flat_map(u16::to_be_bytes).collect())
        .collect();
    let mut t = Vec::new();
    t.extend(0u16.to_be_bytes());
    t.extend((records.len() as u16).to_be_bytes());
    t.extend((6 + 12 * records.len() as u16).to_be_bytes());
    let mut offset = 0u16;
    for ((id, _), s) in records.iter().zip(&strings) {
        for v in [3u16, 1, 0x0409, *id, s.len() as u16, offset] {
            t.extend(v.to_be_bytes());
        }
        offset += s.len() as u16;
    }
    for s in strings {
        t.extend(s);
    }
    t
}

/// `post` version 3.0: no glyph names.
fn post() -> Vec<u8> {
    let mut t = Vec::with_capacity(32);
    t.extend(0x0003_0000u32.to_be_bytes());
    t.extend([0u8; 28]);
    t
}

fn checksum(data: &[u8]) -> u32 {
    // Whole words first (a fixed-size copy the compiler turns into a load), then the tail
    // padded with zeros.
    let words = data.chunks_exact(4);
    let mut tail = [0u8; 4];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    words
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .fold(u32::from_be_bytes(tail), u32::wrapping_add)
}

/// The sfnt: offset table, table records (sorted by tag), tables padded to 4 bytes, and
/// `head.checksumAdjustment` set.
fn assemble(tables: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    debug_assert!(tables.windows(2).all(|w| w[0].0 < w[1].0), "tables sorted by tag");
    let n = tables.len() as u16;
    let pow = 1u16 << (15 - n.leading_zeros());
    let size =
        12 + 16 * tables.len() + tables.iter().map(|(_, d)| d.len().div_ceil(4) * 4).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend(*b"OTTO");
    for v in [n, pow * 16, pow.trailing_zeros() as u16, n * 16 - pow * 16] {
        out.extend(v.to_be_bytes());
    }
    let mut offset = 12 + 16 * u32::from(n);
    let mut head_at = None;
    for (tag, data) in tables {
        out.extend(*tag);
        out.extend(checksum(data).to_be_bytes());
        out.extend(offset.to_be_bytes());
        out.extend((data.len() as u32).to_be_bytes());
        if *tag == b"head" {
            head_at = Some(offset as usize);
        }
        offset += (data.len() as u32).div_ceil(4) * 4;
    }
    for (_, data) in tables {
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(4) * 4, 0);
    }
    if let Some(at) = head_at {
        let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
        out[at + 8..at + 12].copy_from_slice(&adjustment.to_be_bytes());
    }
    out
}
