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

const BOUND_SHEET: u16 = 0x0085;
const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const DIMENSIONS: u16 = 0x0200;
const CONTINUE: u16 = 0x003C;
/// The cells of a full BIFF8 sheet.
const MAX_CELLS: usize = 65_536 * 256;

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

/// `Err` names what is wrong with the workbook stream `stream`.
pub(super) fn check(stream: &[u8]) -> Result<(), &'static str> {
    let mut sheets = Vec::new();
    for (typ, data) in records(stream) {
        match typ {
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
        for (typ, data) in records(sheet) {
            match (depth, typ) {
                (0, BOF) if seen_bof => depth = 1,
                (0, BOF) => seen_bof = true,
                (0, EOF) => break,
                (0, DIMENSIONS) => dimensions(data)?,
                (_, BOF) if depth > 0 => depth += 1,
                (_, EOF) if depth > 0 => depth -= 1,
                _ => {}
            }
        }
    }
    Ok(())
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
    use super::{check, dimensions};

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
        assert_eq!(check(&stream), Ok(()));
        // The same Dimensions in the sheet itself is refused.
        let at = stream.len();
        stream.truncate(at - 4);
        stream.extend(record(0x0200, &dims(0, u32::MAX, 0, 256)));
        stream.extend(record(0x000A, &[]));
        assert!(check(&stream).is_err());
        // A sheet offset past the end.
        let mut stream = record(0x0085, &[0xFF, 0, 0, 0, 0, 0]);
        stream.extend(record(0x000A, &[]));
        assert_eq!(check(&stream), Err("sheet offset past the end of the workbook stream"));
    }
}
