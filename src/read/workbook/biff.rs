//! Just enough of the BIFF record stream (MS-XLS §2.1.4) to find what calamine's xls reader
//! would allocate for, before it runs.
//!
//! calamine parses every sheet when the workbook is opened, and on a sheet's Dimensions record
//! (MS-XLS §2.4.90) reserves room for `rows × columns` cells at once, the size taken from the
//! file: a few bytes declaring 4 billion rows made it request 2 PB, and the allocation failure
//! aborts the whole process (found by `fuzz_workbook`: xls-dimensions-huge-reserve.xls). A
//! reversed range underflows its subtraction (a panic in a debug build). So each sheet's
//! records are walked as calamine walks them (from the BoundSheet8 offsets, skipping embedded
//! substreams, continuation records folded in), and a Dimensions record that is reversed or
//! larger than the BIFF8 grid (65,536 rows × 256 columns, MS-XLS §2.5.53 `ColU`, §2.5.204 `Rw`)
//! is refused, as is a sheet offset past the end of the stream (calamine panics slicing it).
//!
//! After reading a sheet calamine turns its cells into a dense grid spanning the extreme
//! positions the cell records give (`Range::from_sparse`), whatever Dimensions said: two cells
//! far apart in a few hundred bytes made it request 123 GB (found by `fuzz_workbook`:
//! xls-cells-far-apart.xls). So the cell records calamine reads are walked too: a column beyond
//! the BIFF8 grid (256 columns) is refused, and so is a sheet whose cells' bounding box would
//! take more than the reader's memory limit as calamine holds it. A MulRk record whose column
//! range is reversed is refused as well (calamine's `col_last - col_first + 1` overflows).
//!
//! calamine also reads many records' fixed fields without checking their length and panics on
//! a short one (found by `fuzz_workbook`: BoundSheet8, MergeCells, a two-byte globals record).
//! The records it reads that way are mirrored here: in the globals, FilePass, CodePage,
//! DateMode, BOF and ExternSheet (two bytes), BoundSheet8 (six), Lbl (its name, its formula
//! and that formula's first token) and the shared strings across their Continue records; in a
//! sheet, MergeCells and Formula. Formula tokens are not mirrored but neutralised: see
//! [`FORMULA`].

const BOUND_SHEET: u16 = 0x0085;
const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const DIMENSIONS: u16 = 0x0200;
const CONTINUE: u16 = 0x003C;
/// Formula (MS-XLS 2.4.127): the cell, its cached value, flags, and from byte 20 the parsed
/// formula: `cce`, then `cce` bytes of tokens. calamine turns those tokens into text with
/// unchecked slicing and arithmetic throughout (`parse_formula`), and elicence never asks for
/// formula text, only cell values; so each formula's `cce` is cleared in the bytes calamine
/// reads, which keeps the cached value and leaves calamine no tokens to misread.
const FORMULA: u16 = 0x0006;
/// String (MS-XLS 2.4.268): the string value of the formula before it.
const STRING: u16 = 0x0207;
const FILE_PASS: u16 = 0x002F;
const CODE_PAGE: u16 = 0x0042;
const DATE_MODE: u16 = 0x0022;
const EXTERN_SHEET: u16 = 0x0017;
const LBL: u16 = 0x0018;
const SST: u16 = 0x00FC;
const MUL_RK: u16 = 0x00BD;
/// MergeCells (MS-XLS 2.4.168): a count, then that many 8-byte ranges; at most 1,026.
const MERGE_CELLS: u16 = 0x00E5;
const MAX_MERGE_RANGES: usize = 1026;
/// Records holding one cell whose row and column are the first two fields (MS-XLS §2.4):
/// Number, Label, RString, BoolErr, RK, LabelSst — the ones calamine turns into cells
/// (besides Formula, above).
const ONE_CELL: [u16; 6] = [0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD];
/// The cells of a full BIFF8 sheet.
const MAX_CELLS: usize = 65_536 * 256;
/// Columns of a BIFF8 sheet (MS-XLS §2.5.53 `ColU`: 0..=0xFF).
const MAX_COLUMN: u16 = 0xFF;

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let raw = bytes.get(offset..offset + 2)?;
    Some(u16::from_le_bytes([*raw.first()?, *raw.get(1)?]))
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from(u16_at(bytes, offset)?) | (u32::from(u16_at(bytes, offset + 2)?) << 16))
}

/// A record as calamine's `RecordIter` yields it: where its header starts in the stream, its
/// type, its data, and the data of the Continue records that follow it.
struct Rec<'a> {
    at: usize,
    typ: u16,
    data: &'a [u8],
    cont: Vec<&'a [u8]>,
}

/// The records of `stream` as calamine reads them. Ends where calamine reports an error.
fn records(stream: &[u8]) -> impl Iterator<Item = Rec<'_>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let start = at;
        let typ = u16_at(stream, start)?;
        let len = usize::from(u16_at(stream, start + 2)?);
        let data = stream.get(start + 4..start + 4 + len)?;
        at = start + 4 + len;
        let mut cont = Vec::new();
        while stream.len().saturating_sub(at) > 4 && u16_at(stream, at) == Some(CONTINUE) {
            let len = usize::from(u16_at(stream, at + 2)?);
            cont.push(stream.get(at + 4..at + 4 + len)?);
            at += 4 + len;
        }
        Some(Rec { at: start, typ, data, cont })
    })
}

/// `Err` names what is wrong with the workbook stream `stream`; `max_grid_bytes` bounds the
/// dense grid calamine builds for one sheet. `Ok` holds the offsets in `stream` of the
/// formula lengths to clear (see [`FORMULA`]).
pub(super) fn check(stream: &[u8], max_grid_bytes: u64) -> Result<Vec<usize>, &'static str> {
    let Some(sheets) = check_globals(stream)? else { return Ok(Vec::new()) };
    let mut clear = Vec::new();
    for offset in sheets {
        let Some(sheet) = stream.get(offset as usize..) else {
            return Err("sheet offset past the end of the workbook stream");
        };
        let (mut seen_bof, mut depth, mut seen_formula) = (false, 0usize, false);
        let mut extent = Extent::default();
        for r in records(sheet) {
            let data = r.data;
            match (depth, r.typ) {
                (0, BOF) if seen_bof => depth = 1,
                (0, BOF) => seen_bof = true,
                (0, EOF) => break,
                (0, DIMENSIONS) => dimensions(data)?,
                (0, MUL_RK) => extent.mul_rk(data)?,
                (0, MERGE_CELLS) => merge_cells(data)?,
                // Shorter than 20 bytes calamine reports it.
                (0, FORMULA) if data.len() >= 20 => {
                    let cce =
                        u16_at(data, 20).ok_or("Formula record cut short before its formula")?;
                    if cce != 0 {
                        clear.push(offset as usize + r.at + 4 + 20);
                    }
                    seen_formula = true;
                    extent.cell(data)?;
                }
                (0, typ) if ONE_CELL.contains(&typ) => extent.cell(data)?,
                // A formula's string value lands where the last formula was: A1 before any.
                (0, STRING) if !seen_formula => extent.add(0, 0)?,
                (_, BOF) if depth > 0 => depth += 1,
                (_, EOF) if depth > 0 => depth -= 1,
                _ => {}
            }
        }
        extent.check(max_grid_bytes)?;
    }
    Ok(clear)
}

/// The sheet offsets the globals give (`None` for an encrypted workbook, which calamine
/// reports), after refusing what calamine would read out of bounds there.
fn check_globals(stream: &[u8]) -> Result<Option<Vec<u32>>, &'static str> {
    let mut sheets = Vec::new();
    // calamine starts reading as BIFF8 and takes the version of every BOF it meets.
    let mut biff8 = true;
    for r in records(stream) {
        match r.typ {
            // calamine reads two bytes of these unchecked (fuzz_workbook, 2026-12-05).
            FILE_PASS | CODE_PAGE | DATE_MODE | BOF if r.data.len() < 2 => {
                return Err("workbook globals record shorter than 2 bytes");
            }
            EXTERN_SHEET if biff8 && r.data.len() < 2 => {
                return Err("ExternSheet record shorter than 2 bytes");
            }
            FILE_PASS if u16_at(r.data, 0) != Some(0) => return Ok(None),
            BOF => biff8 = bof_is_biff8(r.data),
            LBL => lbl(r.data, biff8)?,
            SST => sst(r.data, &r.cont)?,
            // MS-XLS 2.4.28: lbPlyPos (4 bytes), hsState, dt, then the name; calamine indexes
            // the first six bytes unchecked (fuzz_workbook, 2026-12-05).
            BOUND_SHEET if r.data.len() < 6 => {
                return Err("BoundSheet8 record shorter than 6 bytes");
            }
            BOUND_SHEET => sheets.extend(u32_at(r.data, 0)),
            EOF => break,
            _ => {}
        }
    }
    Ok(Some(sheets))
}

/// calamine's `parse_bof`: whether a BOF record (at least 2 bytes) starts BIFF8.
fn bof_is_biff8(data: &[u8]) -> bool {
    match u16_at(data, 0) {
        Some(0x0200 | 0x0002 | 0x0007 | 0x0300 | 0x0400 | 0x0500) => false,
        Some(0) => u16_at(data, 2) != Some(0x1000),
        _ => true,
    }
}

/// Lbl (MS-XLS 2.4.150) as calamine's `parse_lbl` and `parse_defined_names` read it: the name
/// from byte 14, the formula (`cce` bytes) at the end of the record, and its first token's
/// fixed fields, none of it bounds-checked.
fn lbl(data: &[u8], biff8: bool) -> Result<(), &'static str> {
    if data.len() < 14 {
        return Err("Lbl (defined name) record shorter than 14 bytes");
    }
    let cce = usize::from(u16_at(data, 4).unwrap_or(0));
    let Some(rgce) = data.len().checked_sub(cce).and_then(|at| data.get(at..)) else {
        return Err("Lbl (defined name) record whose formula is longer than the record");
    };
    let token_len = match (rgce.first(), biff8) {
        (Some(0x3A | 0x5A | 0x7A), true) => 7,
        (Some(0x3A | 0x5A | 0x7A), false) => 18,
        (Some(0x3B | 0x5B | 0x7B), true) => 11,
        (Some(0x3B | 0x5B | 0x7B), false) => 21,
        (Some(0x3C | 0x5C | 0x7C | 0x3D | 0x5D | 0x7D), true) => 3,
        (Some(0x3C | 0x5C | 0x7C | 0x3D | 0x5D | 0x7D), false) => 13,
        _ => 0,
    };
    if rgce.len() < token_len {
        return Err("Lbl (defined name) record whose formula token is cut short");
    }
    Ok(())
}

/// The shared string table (MS-XLS 2.4.265) as calamine's `parse_sst`,
/// `read_rich_extended_string` and `read_dbcs` walk it across Continue records: a string's
/// run count and extension size are read unchecked, and a string continued in an empty
/// Continue record is indexed at byte 0.
fn sst(data: &[u8], cont: &[&[u8]]) -> Result<(), &'static str> {
    // Shorter than its two counts: calamine reports it.
    let Some(mut data) = data.get(8..) else { return Ok(()) };
    let mut cont = cont.iter().copied();
    loop {
        if data.is_empty() {
            let Some(next) = cont.next() else { return Ok(()) };
            data = next;
            continue;
        }
        let (Some(cch), Some(&flags)) = (u16_at(data, 0), data.get(2)) else { return Ok(()) };
        data = data.get(3..).unwrap_or_default();
        let mut runs = 0usize;
        if flags & 0x8 != 0 {
            runs = usize::from(u16_at(data, 0).ok_or("SST string whose run count is cut short")?);
            data = data.get(2..).unwrap_or_default();
        }
        let mut extension = 0usize;
        if flags & 0x4 != 0 {
            let size = u32_at(data, 0).ok_or("SST string whose extension size is cut short")?;
            // calamine reads it as an i32 and casts it to usize, sign extended.
            extension = size as i32 as isize as usize;
            data = data.get(4..).unwrap_or_default();
        }
        let (mut chars, mut wide) = (usize::from(cch), flags & 0x1 != 0);
        while chars > 0 {
            let taken = if wide { (data.len() / 2).min(chars) } else { data.len().min(chars) };
            data = data.get(if wide { 2 * taken } else { taken }..).unwrap_or_default();
            chars -= taken;
            if chars > 0 {
                let Some(next) = cont.next() else { return Ok(()) };
                let (&flag, rest) =
                    next.split_first().ok_or("SST string continued in an empty Continue record")?;
                (wide, data) = (flag & 0x1 != 0, rest);
            }
        }
        for mut skip in [runs * 4, extension] {
            while skip > 0 {
                if data.is_empty() {
                    let Some(next) = cont.next() else { return Ok(()) };
                    data = next;
                }
                let step = skip.min(data.len());
                data = data.get(step..).unwrap_or_default();
                skip -= step;
            }
        }
    }
}

/// calamine reads a MergeCells record's count and ranges without checking its length (and
/// computes their offsets in `u16`): refuse a record that does not hold what its count says
/// (fuzz_workbook, 2026-12-05).
fn merge_cells(data: &[u8]) -> Result<(), &'static str> {
    let count = usize::from(u16_at(data, 0).ok_or("MergeCells record shorter than its count")?);
    if count > MAX_MERGE_RANGES || data.len() < 2 + 8 * count {
        return Err("MergeCells record shorter than its count of ranges");
    }
    Ok(())
}

/// The bounding box of a sheet's cells: (first row, last row, first column, last column).
#[derive(Default)]
struct Extent(Option<(u16, u16, u16, u16)>);

impl Extent {
    fn add(&mut self, row: u16, col: u16) -> Result<(), &'static str> {
        if col > MAX_COLUMN {
            return Err("cell beyond column IV, the last of a BIFF8 sheet");
        }
        let (r0, r1, c0, c1) = self.0.unwrap_or((row, row, col, col));
        self.0 = Some((r0.min(row), r1.max(row), c0.min(col), c1.max(col)));
        Ok(())
    }

    /// A record starting with row and column; a record too short for them calamine reports.
    fn cell(&mut self, data: &[u8]) -> Result<(), &'static str> {
        match (u16_at(data, 0), u16_at(data, 2)) {
            (Some(row), Some(col)) => self.add(row, col),
            _ => Ok(()),
        }
    }

    /// MulRk (MS-XLS §2.4.175): row, first column, RK values, last column.
    fn mul_rk(&mut self, data: &[u8]) -> Result<(), &'static str> {
        let (Some(row), Some(first), Some(last)) = (
            u16_at(data, 0),
            u16_at(data, 2),
            data.len().checked_sub(2).and_then(|at| u16_at(data, at)),
        ) else {
            return Ok(());
        };
        if data.len() < 6 {
            return Ok(());
        }
        if last < first || last - first == u16::MAX {
            return Err("MulRk record whose last column comes before its first");
        }
        self.add(row, first)?;
        self.add(row, last)
    }

    /// calamine's `Range::from_sparse` allocates the whole box, `size_of::<Data>()` per cell.
    fn check(&self, max_grid_bytes: u64) -> Result<(), &'static str> {
        let Some((r0, r1, c0, c1)) = self.0 else { return Ok(()) };
        let cells = (u64::from(r1 - r0) + 1) * (u64::from(c1 - c0) + 1);
        let bytes = cells.saturating_mul(std::mem::size_of::<calamine::Data>() as u64);
        if bytes > max_grid_bytes {
            return Err("sheet cells spread so far apart that their grid exceeds the memory limit");
        }
        Ok(())
    }
}

/// calamine's `parse_dimensions` and the reservation after it, in checked arithmetic.
fn dimensions(data: &[u8]) -> Result<(), &'static str> {
    let fields = match data.len() {
        10 => (0..4).map(|i| u16_at(data, 2 * i).map(u32::from)).collect::<Option<Vec<_>>>(),
        14 | 16 => Some(vec![
            u32_at(data, 0).unwrap_or(0),
            u32_at(data, 4).unwrap_or(0),
            u16_at(data, 8).map_or(0, u32::from),
            u16_at(data, 10).map_or(0, u32::from),
        ]),
        // calamine reports any other length as an error.
        _ => return Ok(()),
    };
    let Some(&[first_row, row_end, mut first_col, col_end]) = fields.as_deref() else {
        return Ok(());
    };
    if first_col > 0xFF || col_end < first_col {
        first_col = 0;
    }
    let (rows, cols) = if row_end >= 1 && col_end >= 1 {
        ((row_end - 1).checked_sub(first_row), (col_end - 1).checked_sub(first_col))
    } else {
        (Some(0), Some(0))
    };
    let (Some(rows), Some(cols)) = (rows, cols) else {
        return Err("sheet dimensions end before they start");
    };
    let cells = (rows as usize + 1).saturating_mul(cols as usize + 1);
    if cells > MAX_CELLS {
        return Err("sheet dimensions beyond 65536 rows by 256 columns");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check, dimensions, lbl, merge_cells, sst};

    fn record(typ: u16, data: &[u8]) -> Vec<u8> {
        let mut out = typ.to_le_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u16).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    fn dims(first_row: u32, row_end: u32, first_col: u16, col_end: u16) -> Vec<u8> {
        let mut d = first_row.to_le_bytes().to_vec();
        d.extend_from_slice(&row_end.to_le_bytes());
        d.extend_from_slice(&first_col.to_le_bytes());
        d.extend_from_slice(&col_end.to_le_bytes());
        d.extend_from_slice(&[0, 0]);
        d
    }

    #[test]
    fn dimensions_within_the_grid_pass() {
        assert_eq!(dimensions(&dims(0, 65_536, 0, 256)), Ok(()));
        assert_eq!(dimensions(&dims(2, 3, 0, 5)), Ok(()));
        assert_eq!(dimensions(&dims(0, 0, 0, 0)), Ok(()));
        // calamine starts a column range it finds odd at column 0.
        assert_eq!(dimensions(&dims(0, 10, 300, 5)), Ok(()));
    }

    #[test]
    fn oversized_or_reversed_dimensions_are_refused() {
        let beyond = Err("sheet dimensions beyond 65536 rows by 256 columns");
        assert_eq!(dimensions(&dims(0, 65_537, 0, 256)), beyond);
        assert_eq!(dimensions(&dims(0, u32::MAX, 0, 256)), beyond);
        let reversed = Err("sheet dimensions end before they start");
        assert_eq!(dimensions(&dims(10, 5, 0, 5)), reversed);
        assert_eq!(dimensions(&dims(0, 5, 5, 5)), reversed);
    }

    /// A workbook stream with one sheet made of `cells` (type, data) records.
    fn one_sheet(cells: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut stream = record(0x0085, &[14, 0, 0, 0, 0, 0]);
        stream.extend(record(0x000A, &[]));
        assert_eq!(stream.len(), 14);
        stream.extend(record(0x0809, &[0; 4]));
        for (typ, data) in cells {
            stream.extend(record(*typ, data));
        }
        stream.extend(record(0x000A, &[]));
        stream
    }

    fn number(row: u16, col: u16) -> (u16, Vec<u8>) {
        let mut d = row.to_le_bytes().to_vec();
        d.extend_from_slice(&col.to_le_bytes());
        d.extend_from_slice(&[0; 10]);
        (0x0203, d)
    }

    fn mul_rk(row: u16, first: u16, last: u16, values: usize) -> (u16, Vec<u8>) {
        let mut d = row.to_le_bytes().to_vec();
        d.extend_from_slice(&first.to_le_bytes());
        d.extend(std::iter::repeat_n(0u8, 6 * values));
        d.extend_from_slice(&last.to_le_bytes());
        (0x00BD, d)
    }

    #[test]
    fn cells_within_the_grid_and_the_limit_pass() {
        let stream = one_sheet(&[number(0, 0), number(65_535, 255), mul_rk(3, 1, 2, 2)]);
        assert_eq!(check(&stream, u64::MAX), Ok(vec![]));
        assert_eq!(check(&one_sheet(&[]), 0), Ok(vec![]));
    }

    #[test]
    fn a_column_beyond_iv_is_refused_in_any_cell_record() {
        let beyond = Err("cell beyond column IV, the last of a BIFF8 sheet");
        assert_eq!(check(&one_sheet(&[number(0, 256)]), u64::MAX), beyond);
        assert_eq!(check(&one_sheet(&[mul_rk(0, 250, 300, 51)]), u64::MAX), beyond);
        assert_eq!(check(&one_sheet(&[formula(1, 0xFFFF, &[])]), u64::MAX), beyond);
    }

    #[test]
    fn cells_whose_grid_exceeds_the_limit_are_refused() {
        let stream = one_sheet(&[number(0, 0), number(999, 9)]);
        let grid = 10_000 * std::mem::size_of::<calamine::Data>() as u64;
        assert_eq!(check(&stream, grid), Ok(vec![]));
        assert_eq!(
            check(&stream, grid - 1),
            Err("sheet cells spread so far apart that their grid exceeds the memory limit")
        );
    }

    #[test]
    fn a_reversed_mul_rk_is_refused() {
        let reversed = Err("MulRk record whose last column comes before its first");
        assert_eq!(check(&one_sheet(&[mul_rk(0, 5, 4, 1)]), u64::MAX), reversed);
    }

    #[test]
    fn a_merge_cells_record_shorter_than_its_count_is_refused() {
        let ok = [&1u16.to_le_bytes()[..], &[0, 0, 1, 0, 0, 0, 1, 0]].concat();
        assert_eq!(merge_cells(&ok), Ok(()));
        for bad in [&[][..], &[1], &ok[..9], &[2, 0, 0, 0, 1, 0, 0, 0, 1, 0]] {
            assert!(merge_cells(bad).is_err(), "{bad:?}");
        }
        let many = [&2000u16.to_le_bytes()[..], &vec![0; 16_000]].concat();
        assert!(merge_cells(&many).is_err());
        assert!(check(&one_sheet(&[(0x00E5, vec![5, 0])]), u64::MAX).is_err());
    }

    #[test]
    fn a_bound_sheet_record_cut_short_is_refused() {
        for len in 0..6 {
            let mut stream = record(0x0085, &[10, 0, 0, 0, 0, 0][..len]);
            stream.extend(record(0x000A, &[]));
            assert_eq!(check(&stream, u64::MAX), Err("BoundSheet8 record shorter than 6 bytes"));
        }
    }

    #[test]
    fn only_the_sheet_records_calamine_reads_are_checked() {
        // Globals: BoundSheet8 at offset 10 (after itself), EOF.
        let mut stream = record(0x0085, &[10, 0, 0, 0, 0, 0]);
        stream.extend(record(0x000A, &[]));
        assert_eq!(stream.len(), 14);
        stream.truncate(10);
        // Sheet: BOF, an embedded chart (BOF .. EOF) with a bad Dimensions, then EOF.
        stream.extend(record(0x0809, &[0; 4]));
        stream.extend(record(0x0809, &[0; 4]));
        stream.extend(record(0x0200, &dims(0, u32::MAX, 0, 256)));
        stream.extend(record(0x000A, &[]));
        stream.extend(record(0x000A, &[]));
        assert_eq!(check(&stream, u64::MAX), Ok(vec![]));
        // The same Dimensions in the sheet itself is refused.
        let at = stream.len();
        stream.truncate(at - 4);
        stream.extend(record(0x0200, &dims(0, u32::MAX, 0, 256)));
        stream.extend(record(0x000A, &[]));
        assert!(check(&stream, u64::MAX).is_err());
        // A sheet offset past the end.
        let mut stream = record(0x0085, &[0xFF, 0, 0, 0, 0, 0]);
        stream.extend(record(0x000A, &[]));
        assert_eq!(
            check(&stream, u64::MAX),
            Err("sheet offset past the end of the workbook stream")
        );
    }

    /// A workbook stream whose globals are `globals` (type, data) records, then EOF.
    fn globals(records: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut stream = Vec::new();
        for (typ, data) in records {
            stream.extend(record(*typ, data));
        }
        stream.extend(record(0x000A, &[]));
        stream
    }

    #[test]
    fn globals_records_read_unchecked_must_hold_their_fields() {
        // FilePass, CodePage, DateMode, BOF: two bytes; ExternSheet: two in BIFF8.
        for typ in [0x002F, 0x0042, 0x0022, 0x0809] {
            for len in 0..2 {
                assert_eq!(
                    check(&globals(&[(typ, vec![0; len])]), u64::MAX),
                    Err("workbook globals record shorter than 2 bytes"),
                    "{typ:#06x} of {len} bytes"
                );
            }
            assert_eq!(check(&globals(&[(typ, vec![0; 2])]), u64::MAX), Ok(vec![]));
        }
        let short_extern = globals(&[(0x0017, vec![1])]);
        assert_eq!(check(&short_extern, u64::MAX), Err("ExternSheet record shorter than 2 bytes"));
        // calamine reads no ExternSheet table before BIFF8 (a BIFF5 BOF first).
        let biff5 = globals(&[(0x0809, vec![0x00, 0x05, 0x10, 0x00]), (0x0017, vec![1])]);
        assert_eq!(check(&biff5, u64::MAX), Ok(vec![]));
        // An encrypted workbook is left to calamine, which says so.
        let encrypted = globals(&[(0x002F, vec![1, 0]), (0x0085, vec![1])]);
        assert_eq!(check(&encrypted, u64::MAX), Ok(vec![]));
    }

    /// An Lbl record: 14 fixed bytes with `cce` at 4, a one-byte name, then `rgce`.
    fn lbl_record(rgce: &[u8], cce: u16) -> Vec<u8> {
        let mut d = vec![0u8; 14];
        d[3] = 1;
        d[4..6].copy_from_slice(&cce.to_le_bytes());
        d.extend_from_slice(&[0, b'A']);
        d.extend_from_slice(rgce);
        d
    }

    #[test]
    fn defined_names_must_hold_their_formula_and_its_first_token() {
        let area = [0x3B, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0];
        assert_eq!(lbl(&lbl_record(&area, 11), true), Ok(()));
        assert_eq!(
            lbl(&lbl_record(&area[..7], 7), true).unwrap_err(),
            "Lbl (defined name) record whose formula token is cut short"
        );
        assert!(lbl(&lbl_record(&area, 200), true).is_err(), "cce beyond the record");
        assert!(lbl(&[0; 13], true).is_err(), "shorter than its fixed fields");
        // BIFF5 tokens are longer: the BIFF8 PtgRef3d is too short there.
        let reference = [0x3A, 0, 0, 0, 0, 0, 0];
        assert_eq!(lbl(&lbl_record(&reference, 7), true), Ok(()));
        assert!(lbl(&lbl_record(&reference, 7), false).is_err());
        assert_eq!(lbl(&lbl_record(&[], 0), true), Ok(()));
    }

    #[test]
    fn shared_strings_are_walked_across_continue_records() {
        let counts = [0u8; 8];
        // "ab", then "cd" continued: 1 char here, 1 in the Continue record (flag byte first).
        let mut data = counts.to_vec();
        data.extend_from_slice(&[2, 0, 0, b'a', b'b', 2, 0, 0, b'c']);
        assert_eq!(sst(&data, &[&[0, b'd']]), Ok(()));
        assert_eq!(sst(&data, &[&[]]), Err("SST string continued in an empty Continue record"));
        // Rich text flag without room for its run count; extension flag without its size.
        let rich = [&counts[..], &[1, 0, 0x08, 0]].concat();
        assert_eq!(sst(&rich, &[]), Err("SST string whose run count is cut short"));
        let ext = [&counts[..], &[1, 0, 0x04, 0, 0, 0]].concat();
        assert_eq!(sst(&ext, &[]), Err("SST string whose extension size is cut short"));
        // Runs and extension skipped over a Continue record; a negative size is calamine's error.
        let both = [&counts[..], &[1, 0, 0x0C, 1, 0, 2, 0, 0, 0, b'x', 1, 2]].concat();
        assert_eq!(sst(&both, &[&[3, 4], &[5, 6, 1, 0, 0, b'y']]), Ok(()));
        let negative = [&counts[..], &[1, 0, 0x04, 0xFF, 0xFF, 0xFF, 0xFF, b'x']].concat();
        assert_eq!(sst(&negative, &[&[1, 2]]), Ok(()));
        // Through `check`: an SST record with its Continue records after it.
        let mut stream = record(0x00FC, &data);
        stream.extend(record(0x003C, &[]));
        stream.extend(record(0x000A, &[]));
        assert!(check(&stream, u64::MAX).is_err());
    }

    fn formula(row: u16, col: u16, tokens: &[u8]) -> (u16, Vec<u8>) {
        let mut d = row.to_le_bytes().to_vec();
        d.extend_from_slice(&col.to_le_bytes());
        d.extend_from_slice(&[0; 16]);
        d.extend_from_slice(&(tokens.len() as u16).to_le_bytes());
        d.extend_from_slice(tokens);
        (0x0006, d)
    }

    #[test]
    fn formula_lengths_are_reported_for_clearing() {
        let stream = one_sheet(&[formula(1, 1, &[0x18]), formula(2, 1, &[])]);
        // The sheet starts at 14; BOF (8 bytes); the first formula's header (4), then 20 bytes.
        assert_eq!(check(&stream, u64::MAX), Ok(vec![14 + 8 + 4 + 20]));
        // A Formula record ending inside its length field is refused; shorter, calamine reports.
        let mut cut = formula(1, 1, &[]);
        cut.1.truncate(21);
        assert_eq!(
            check(&one_sheet(&[cut.clone()]), u64::MAX),
            Err("Formula record cut short before its formula")
        );
        cut.1.truncate(19);
        assert_eq!(check(&one_sheet(&[cut]), u64::MAX), Ok(vec![]));
        // A formula's cells count in the sheet's extent; so does A1 for a String record before
        // any formula.
        let beyond = Err("cell beyond column IV, the last of a BIFF8 sheet");
        assert_eq!(check(&one_sheet(&[formula(0, 300, &[])]), u64::MAX), beyond);
        let far = one_sheet(&[(0x0207, vec![0, 0, 0]), number(999, 9)]);
        let grid = 10_000 * std::mem::size_of::<calamine::Data>() as u64;
        assert_eq!(check(&far, grid), Ok(vec![]));
        assert!(check(&far, grid - 1).is_err());
    }
}
