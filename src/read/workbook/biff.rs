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

const BOUND_SHEET: u16 = 0x0085;
const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const DIMENSIONS: u16 = 0x0200;
const CONTINUE: u16 = 0x003C;
const FORMULA: u16 = 0x0006;
const MUL_RK: u16 = 0x00BD;
/// MergeCells (MS-XLS 2.4.168): a count, then that many 8-byte ranges; at most 1,026.
const MERGE_CELLS: u16 = 0x00E5;
const MAX_MERGE_RANGES: usize = 1026;
/// Records holding one cell whose row and column are the first two fields (MS-XLS §2.4):
/// Number, Label, RString, BoolErr, RK, LabelSst — the ones calamine turns into cells.
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

/// Records as calamine's `RecordIter` yields them: (type, data), a following run of
/// Continue records folded into the one before. Ends where calamine reports an error.
fn records(mut stream: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let typ = u16_at(stream, 0)?;
        let len = usize::from(u16_at(stream, 2)?);
        let data = stream.get(4..4 + len)?;
        stream = stream.get(4 + len..)?;
        while stream.len() > 4 && u16_at(stream, 0) == Some(CONTINUE) {
            let len = usize::from(u16_at(stream, 2)?);
            stream = stream.get(4 + len..)?;
        }
        Some((typ, data))
    })
}

/// `Err` names what is wrong with the workbook stream `stream`; `max_grid_bytes` bounds the
/// dense grid calamine builds for one sheet.
pub(super) fn check(stream: &[u8], max_grid_bytes: u64) -> Result<(), &'static str> {
    let mut sheets = Vec::new();
    for (typ, data) in records(stream) {
        match typ {
            // MS-XLS 2.4.28: lbPlyPos (4 bytes), hsState, dt, then the name; calamine indexes
            // the first six bytes unchecked (fuzz_workbook, 2026-12-05).
            BOUND_SHEET if data.len() < 6 => return Err("BoundSheet8 record shorter than 6 bytes"),
            BOUND_SHEET => sheets.extend(u32_at(data, 0)),
            EOF => break,
            _ => {}
        }
    }
    for offset in sheets {
        let Some(sheet) = stream.get(offset as usize..) else {
            return Err("sheet offset past the end of the workbook stream");
        };
        let (mut seen_bof, mut depth) = (false, 0usize);
        let mut extent = Extent::default();
        for (typ, data) in records(sheet) {
            match (depth, typ) {
                (0, BOF) if seen_bof => depth = 1,
                (0, BOF) => seen_bof = true,
                (0, EOF) => break,
                (0, DIMENSIONS) => dimensions(data)?,
                (0, MUL_RK) => extent.mul_rk(data)?,
                (0, MERGE_CELLS) => merge_cells(data)?,
                (0, typ) if typ == FORMULA || ONE_CELL.contains(&typ) => extent.cell(data)?,
                (_, BOF) if depth > 0 => depth += 1,
                (_, EOF) if depth > 0 => depth -= 1,
                _ => {}
            }
        }
        extent.check(max_grid_bytes)?;
    }
    Ok(())
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
    use super::{check, dimensions, merge_cells};

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
        assert_eq!(check(&stream, u64::MAX), Ok(()));
        assert_eq!(check(&one_sheet(&[]), 0), Ok(()));
    }

    #[test]
    fn a_column_beyond_iv_is_refused_in_any_cell_record() {
        let beyond = Err("cell beyond column IV, the last of a BIFF8 sheet");
        assert_eq!(check(&one_sheet(&[number(0, 256)]), u64::MAX), beyond);
        assert_eq!(check(&one_sheet(&[mul_rk(0, 250, 300, 51)]), u64::MAX), beyond);
        let mut formula = number(1, 0xFFFF);
        formula.0 = 0x0006;
        assert_eq!(check(&one_sheet(&[formula]), u64::MAX), beyond);
    }

    #[test]
    fn cells_whose_grid_exceeds_the_limit_are_refused() {
        let stream = one_sheet(&[number(0, 0), number(999, 9)]);
        let grid = 10_000 * std::mem::size_of::<calamine::Data>() as u64;
        assert_eq!(check(&stream, grid), Ok(()));
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
        assert_eq!(check(&stream, u64::MAX), Ok(()));
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
}
