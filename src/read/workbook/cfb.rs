//! Just enough of MS-CFB (Compound File Binary Format) §2.2–2.6 to validate sector chains the
//! way calamine's `cfb.rs` walks them, and to read the workbook stream for [`super::biff`].

const SIGNATURE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
/// Ids at or above this are markers (DIFSECT, FATSECT, ENDOFCHAIN, FREESECT), not sectors.
const MAX_REGULAR_SECTOR: u32 = 0xFFFF_FFFA;
const DIFSECT: u32 = 0xFFFF_FFFC;
const END_OF_CHAIN: u32 = 0xFFFF_FFFE;

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let raw = bytes.get(offset..offset + 4)?;
    Some(u32::from_le_bytes([*raw.first()?, *raw.get(1)?, *raw.get(2)?, *raw.get(3)?]))
}

fn u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes.chunks_exact(4).map(|c| c.iter().rev().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// `Err` names what is wrong; `Ok` also when the file is not parseable this far (calamine
/// reports those itself). `Ok` holds the offsets in the file of the bytes to clear before
/// calamine reads it (formula lengths, see `biff`).
pub(super) fn check(bytes: &[u8], max_grid_bytes: u64) -> Result<Vec<usize>, &'static str> {
    let Some(header) = bytes.get(..512) else { return Ok(Vec::new()) };
    if header.get(..8) != Some(SIGNATURE) {
        return Ok(Vec::new());
    }
    let sector_size = match header.get(30..32) {
        Some([0x09, 0x00]) => 512usize,
        Some([0x0C, 0x00]) => 4096,
        _ => return Ok(Vec::new()),
    };
    let data = bytes.get(sector_size..).unwrap_or_default();
    // calamine accepts sector ids up to file length / sector size, one or two more than the
    // file holds after its header, and panics slicing a sector that starts past the end.
    let max_id = bytes.len() / sector_size;
    let in_file = data.len().div_ceil(sector_size);
    let sector = |id: u32| -> Result<Option<&[u8]>, &'static str> {
        let id = id as usize;
        if id > max_id {
            return Ok(None);
        }
        if id >= in_file {
            return Err("sector past the end of the file");
        }
        let rest = data.get(id * sector_size..).unwrap_or_default();
        Ok(Some(rest.get(..sector_size).unwrap_or(rest)))
    };
    // A DIFAT, FAT or mini FAT sector is a table of 4-byte ids and must be whole. The last
    // sector of a file can be cut short (`sector` returns what is there, as calamine does);
    // calamine then asserts that the table's length is a multiple of 4 and panics
    // (`utils::to_u32`, found by fuzzing: xls-partial-last-sector.xls), and `u32s` here
    // would drop the leftover bytes. A cut table is a broken file, so it is refused.
    let table_sector = |id: u32, cut: &'static str| -> Result<Option<&[u8]>, &'static str> {
        match sector(id)? {
            Some(s) if s.len() < sector_size => Err(cut),
            other => Ok(other),
        }
    };
    let (Some(mini_fat_start), Some(difat_start)) = (u32_at(header, 60), u32_at(header, 68)) else {
        return Ok(Vec::new());
    };

    // §2.5 DIFAT: 109 entries in the header, then a chain of DIFAT sectors whose last
    // entry points to the next one.
    let mut difat: Vec<u32> = u32s(header.get(76..512).unwrap_or_default()).collect();
    let mut id = difat_start;
    let mut difat_sectors = 0usize;
    while id < MAX_REGULAR_SECTOR {
        difat_sectors += 1;
        if difat_sectors > max_id + 1 {
            return Err("DIFAT chain loops");
        }
        let Some(s) = table_sector(id, "DIFAT sector cut short by the end of the file")? else {
            return Ok(Vec::new());
        };
        difat.extend(u32s(s));
        let Some(next) = difat.pop() else { return Ok(Vec::new()) };
        id = next;
    }
    let fat_sectors: Vec<u32> = difat.into_iter().filter(|&id| id < DIFSECT).collect();
    if fat_sectors.len() > max_id + 1 {
        return Err("more FAT sectors than the file has sectors");
    }
    let mut fat = Vec::with_capacity(fat_sectors.len() * sector_size / 4);
    for id in fat_sectors {
        let Some(s) = table_sector(id, "FAT sector cut short by the end of the file")? else {
            return Ok(Vec::new());
        };
        fat.extend(u32s(s));
    }
    check_table(&fat, max_id, in_file, "FAT")?;
    if let Some(dir_start) = u32_at(header, 48)
        && dir_start < MAX_REGULAR_SECTOR
    {
        sector(dir_start)?;
    }

    // §2.3 mini FAT: a chain in the FAT (already known to end).
    let mut mini_fat = Vec::new();
    let mut id = mini_fat_start;
    while id < MAX_REGULAR_SECTOR {
        let Some(s) = table_sector(id, "mini FAT sector cut short by the end of the file")? else {
            break;
        };
        mini_fat.extend(u32s(s));
        let Some(&next) = fat.get(id as usize) else { break };
        id = next;
    }
    let mini_max = max_id.saturating_mul(8);
    check_table(&mini_fat, mini_max, mini_max + 1, "mini FAT")?;

    // The workbook stream, found and read as calamine's `Cfb::new` and `get_stream` do,
    // for the sheet checks in `biff`. Every chain is known to end (checked above). Beside
    // the bytes, where each sector of the stream starts in the file, to map `biff`'s offsets
    // back to it.
    // As calamine's `get_chain`: the first sector is read even for an empty stream, and the
    // FAT is indexed with every id the chain reaches (`fats[id]`, unchecked).
    let chain = |start: u32, len: usize| -> Result<(Vec<u8>, Placement), &'static str> {
        let mut out = Vec::new();
        let mut placed = Placement { unit: sector_size, starts: Vec::new() };
        let mut id = start;
        while id != END_OF_CHAIN {
            // Beyond the file's last sector calamine reports an error.
            let Some(s) = sector(id)? else { break };
            let take = s.len().min(len - out.len());
            out.extend_from_slice(s.get(..take).unwrap_or_default());
            placed.starts.push(sector_size + id as usize * sector_size);
            if out.len() >= len {
                break;
            }
            id = *fat.get(id as usize).ok_or("sector chain runs past the FAT")?;
        }
        Ok((out, placed))
    };
    let Some(dir_start) = u32_at(header, 48) else { return Ok(Vec::new()) };
    let (directory, _) = chain(dir_start, usize::MAX)?;
    let entries: Vec<Entry> =
        directory.chunks_exact(128).map(|e| Entry::parse(e, sector_size)).collect();
    let Some(root) = entries.first() else { return Ok(Vec::new()) };
    let (mini_stream, mini_placed) = match u32_at(header, 64) {
        Some(n) if n > 0 => chain(root.start, root.len)?,
        _ => (Vec::new(), Placement { unit: sector_size, starts: Vec::new() }),
    };
    // calamine reads "Workbook", and "Book" when that fails: both are checked.
    let mut clear = Vec::new();
    for entry in entries.iter().filter(|e| e.is_workbook()) {
        let (stream, placed) = if entry.len < 4096 {
            mini_chain(&mini_stream, &mini_fat, mini_max, entry.start, entry.len)?
        } else {
            chain(entry.start, entry.len)?
        };
        for at in super::biff::check(&stream, max_grid_bytes)? {
            for byte in [at, at + 1] {
                let in_file = if entry.len < 4096 {
                    placed.offset(byte).and_then(|at| mini_placed.offset(at))
                } else {
                    placed.offset(byte)
                };
                clear.extend(in_file.filter(|&at| at < bytes.len()));
            }
        }
    }
    Ok(clear)
}

/// Where a stream's bytes lie in what contains it: the start of each of its sectors, in order.
struct Placement {
    unit: usize,
    starts: Vec<usize>,
}

impl Placement {
    fn offset(&self, at: usize) -> Option<usize> {
        Some(self.starts.get(at / self.unit)? + at % self.unit)
    }
}

/// A directory entry (MS-CFB §2.6): name, first sector, stream size.
struct Entry {
    name: String,
    start: u32,
    len: usize,
}

impl Entry {
    fn parse(raw: &[u8], sector_size: usize) -> Entry {
        let units = raw.get(..64).unwrap_or_default().chunks_exact(2);
        let units = units.map(|u| u16::from_le_bytes([u[0], u[1]]));
        let name: String = char::decode_utf16(units).map(|c| c.unwrap_or('\u{FFFD}')).collect();
        // calamine cuts the name at its first NUL.
        let name = name.split('\0').next().unwrap_or_default().to_owned();
        let low = u32_at(raw, 120).unwrap_or(0);
        let len = if sector_size == 512 {
            u64::from(low)
        } else {
            u64::from(low) | (u64::from(u32_at(raw, 124).unwrap_or(0)) << 32)
        };
        Entry {
            name,
            start: u32_at(raw, 116).unwrap_or(u32::MAX),
            len: usize::try_from(len).unwrap_or(usize::MAX),
        }
    }

    fn is_workbook(&self) -> bool {
        self.name.eq_ignore_ascii_case("Workbook") || self.name.eq_ignore_ascii_case("Book")
    }
}

/// A stream in the mini stream (64-byte mini sectors chained in the mini FAT). A mini sector
/// reaching past the end of the mini stream is refused: calamine would fill it from
/// wherever its file reader stands, or panic slicing it.
fn mini_chain(
    mini_stream: &[u8],
    mini_fat: &[u32],
    mini_max: usize,
    start: u32,
    len: usize,
) -> Result<(Vec<u8>, Placement), &'static str> {
    const MINI_SECTOR: usize = 64;
    let mut out = Vec::new();
    let mut placed = Placement { unit: MINI_SECTOR, starts: Vec::new() };
    let mut id = start;
    // As calamine's `get_chain` (see `check`): the first mini sector is read even for an
    // empty stream (fuzz_workbook, session 10: an empty mini stream and a Workbook entry of
    // length 0 made calamine slice `data[2304..0]`), and the mini FAT indexed unchecked.
    while id != END_OF_CHAIN && id as usize <= mini_max {
        let from = id as usize * MINI_SECTOR;
        let Some(s) = mini_stream.get(from..from + MINI_SECTOR) else {
            return Err("mini sector past the end of the mini stream");
        };
        out.extend_from_slice(s.get(..MINI_SECTOR.min(len - out.len())).unwrap_or_default());
        placed.starts.push(from);
        if out.len() >= len {
            break;
        }
        id = *mini_fat.get(id as usize).ok_or("mini sector chain runs past the mini FAT")?;
    }
    Ok((out, placed))
}

/// Every chain in `table` must end: no loop, no link to an id that calamine would accept
/// as a sector (`<= max_id`) but that has no entry in the table, and no link to a sector
/// at or past `in_file` (the number of sectors the file holds).
fn check_table(
    table: &[u32],
    max_id: usize,
    in_file: usize,
    name: &'static str,
) -> Result<(), &'static str> {
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const ENDS: u8 = 2;
    let mut state = vec![UNSEEN; table.len()];
    let mut path = Vec::new();
    for start in 0..table.len() {
        let mut id = start;
        loop {
            match state.get(id) {
                Some(&UNSEEN) => {
                    if let Some(slot) = state.get_mut(id) {
                        *slot = ON_PATH;
                    }
                    path.push(id);
                    let Some(&next) = table.get(id) else { break };
                    if next >= MAX_REGULAR_SECTOR || next as usize > max_id {
                        break;
                    }
                    if next as usize >= in_file {
                        return Err("sector chain runs past the end of the file");
                    }
                    id = next as usize;
                }
                Some(&ON_PATH) => {
                    return Err(if name == "FAT" {
                        "FAT chain loops"
                    } else {
                        "mini FAT chain loops"
                    });
                }
                Some(_) => break,
                None if id <= max_id => {
                    return Err(if name == "FAT" {
                        "FAT chain points past the FAT"
                    } else {
                        "mini FAT chain points past the mini FAT"
                    });
                }
                None => break,
            }
        }
        for id in path.drain(..) {
            if let Some(slot) = state.get_mut(id) {
                *slot = ENDS;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check, check_table};

    #[test]
    fn a_table_sector_cut_short_is_refused() {
        // A 512-byte header (sector shift 9) whose DIFAT chain starts at sector 0, and a
        // sector 0 of 3 bytes: calamine would panic on it (xls-partial-last-sector.xls).
        let mut file = vec![0u8; 512];
        file[..8].copy_from_slice(super::SIGNATURE);
        file[30] = 0x09;
        file[76..512].fill(0xFF);
        file.extend_from_slice(&[0, 0xFF, 0]);
        assert_eq!(check(&file, u64::MAX), Err("DIFAT sector cut short by the end of the file"));
        // The same header as a FAT sector: no DIFAT chain, sector 0 listed in the header.
        file[68..72].fill(0xFF);
        file[76..80].fill(0);
        assert_eq!(check(&file, u64::MAX), Err("FAT sector cut short by the end of the file"));
        // Whole, it passes this check.
        file.resize(1024, 0xFF);
        assert_eq!(check(&file, u64::MAX), Ok(vec![]));
    }

    #[test]
    fn loops_and_dangling_links_are_found() {
        const END: u32 = 0xFFFF_FFFE;
        assert_eq!(check_table(&[1, 2, END, END], 10, 10, "FAT"), Ok(()));
        assert_eq!(check_table(&[1, 2, 0], 10, 10, "FAT"), Err("FAT chain loops"));
        assert_eq!(check_table(&[1, 1], 10, 10, "FAT"), Err("FAT chain loops"));
        assert_eq!(check_table(&[5], 10, 10, "FAT"), Err("FAT chain points past the FAT"));
        assert_eq!(
            check_table(&[1, 9, END], 10, 9, "FAT"),
            Err("sector chain runs past the end of the file")
        );
        // Beyond max_id calamine fails cleanly by itself.
        assert_eq!(check_table(&[50], 10, 10, "FAT"), Ok(()));
    }
}
