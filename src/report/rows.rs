//! The row files a data team opens in a spreadsheet: `rejects.csv` (source position, field, rule
//! and reason of every rejected row), `duplicates.csv` and `valid.csv`, in UTF-8 with BOM so
//! that Excel reads the Chinese text.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::catalog::LicenceType;
use crate::record::SourcePos;
use crate::validate::{RowReject, ValidRow};

pub(super) fn io_err(path: &Path, e: std::io::Error) -> OutputError {
    OutputError { path: path.to_path_buf(), source: e }
}

/// An output file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct OutputError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl From<csv::Error> for OutputError {
    fn from(e: csv::Error) -> Self {
        OutputError { path: PathBuf::new(), source: std::io::Error::other(e) }
    }
}

fn bom_csv(path: &Path) -> Result<csv::Writer<BufWriter<File>>, OutputError> {
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    let mut w = BufWriter::with_capacity(1 << 16, file);
    w.write_all("\u{feff}".as_bytes()).map_err(|e| io_err(path, e))?;
    Ok(csv::WriterBuilder::new().flexible(true).from_writer(w))
}

fn sheet_of(pos: &SourcePos) -> &str {
    pos.sheet.as_deref().unwrap_or("")
}

/// The three CSV outputs of `validate` / `run`: valid.csv, rejects.csv, duplicates.csv.
pub struct RowFiles {
    dir: PathBuf,
    valid: csv::Writer<BufWriter<File>>,
    rejects: csv::Writer<BufWriter<File>>,
    duplicates: csv::Writer<BufWriter<File>>,
    rejects_header_written: bool,
    record: Vec<String>,
}

impl RowFiles {
    /// Creates `dir` and the three files with their header rows.
    pub fn create(dir: &Path, ty: &LicenceType) -> Result<RowFiles, OutputError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut valid = bom_csv(&dir.join("valid.csv"))?;
        let mut header: Vec<&str> = vec!["line"];
        header.extend(ty.fields.iter().map(|f| f.label.as_str()));
        header.extend(["status", "issuer_code", "region_code", "notes", "file", "sheet"]);
        valid.write_record(&header)?;
        let rejects = bom_csv(&dir.join("rejects.csv"))?;
        let mut duplicates = bom_csv(&dir.join("duplicates.csv"))?;
        duplicates.write_record([
            "line",
            "duplicate_of_line",
            "file",
            "sheet",
            "duplicate_of_file",
        ])?;
        Ok(RowFiles {
            dir: dir.to_path_buf(),
            valid,
            rejects,
            duplicates,
            rejects_header_written: false,
            record: Vec::new(),
        })
    }

    /// Writes the rejects header: `line, field, rule, message`, then the export's own headers.
    pub fn set_source_headers(&mut self, headers: &[String]) -> Result<(), OutputError> {
        if !self.rejects_header_written {
            let mut h: Vec<&str> = vec!["line", "field", "rule", "message"];
            h.extend(headers.iter().map(String::as_str));
            self.rejects.write_record(&h)?;
            self.rejects_header_written = true;
        }
        Ok(())
    }

    pub fn valid(&mut self, row: &ValidRow) -> Result<(), OutputError> {
        let l = &row.licence;
        self.record.clear();
        self.record.push(l.pos.row.to_string());
        self.record.extend(l.fields.iter().map(|f| f.value.clone()));
        self.record.push(l.status.as_str().to_string());
        self.record.push(l.issuer_code.clone());
        self.record.push(l.region_code.clone());
        self.record.push(row.notes.join("; "));
        self.record.push(l.pos.file.to_string());
        self.record.push(sheet_of(&l.pos).to_string());
        self.valid.write_record(&self.record)?;
        Ok(())
    }

    pub fn reject(&mut self, r: &RowReject) -> Result<(), OutputError> {
        if !self.rejects_header_written {
            self.set_source_headers(&[])?;
        }
        let (field, rule) = match r.primary() {
            Some(p) => (p.field.clone(), p.rule.as_str().to_string()),
            None => (String::new(), String::new()),
        };
        let message = r.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
        self.record.clear();
        self.record.extend([r.pos.row.to_string(), field, rule, message]);
        self.record.extend(r.cells.iter().cloned());
        self.rejects.write_record(&self.record)?;
        Ok(())
    }

    pub fn duplicate(&mut self, pos: &SourcePos, first: &SourcePos) -> Result<(), OutputError> {
        self.duplicates.write_record([
            pos.row.to_string().as_str(),
            first.row.to_string().as_str(),
            &pos.file,
            sheet_of(pos),
            &first.file,
        ])?;
        Ok(())
    }

    /// Flushes all files.
    pub fn finish(mut self) -> Result<(), OutputError> {
        for (w, name) in [
            (&mut self.valid, "valid.csv"),
            (&mut self.rejects, "rejects.csv"),
            (&mut self.duplicates, "duplicates.csv"),
        ] {
            w.flush().map_err(|e| io_err(&self.dir.join(name), e))?;
        }
        Ok(())
    }
}
