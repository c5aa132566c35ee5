//! CSV and TSV files: columns picked by header name (or by position for headerless files such
//! as GLUE's CoLA), read as bytes so that invalid UTF-8 is reported with its line and column.

use std::path::Path;

use fedsa_core::config::DataConfig;
use fedsa_core::{Error, Result};

use super::{RawRecord, label_value};

/// A column picked by header name, or by 0-based position in a headerless file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Name(String),
    Index(usize),
}

impl Column {
    pub fn name(name: &str) -> Self {
        Self::Name(name.to_string())
    }
}

/// How to read one delimited file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelimitedSpec {
    pub delimiter: u8,
    /// Whether `"` quotes fields. GLUE's TSV files use quotes as plain text, so they turn it off.
    pub quoting: bool,
    /// Whether the first row names the columns.
    pub has_header: bool,
    /// Fields per row in a headerless file (with a header, the header's width is required).
    pub fields: Option<usize>,
    pub text: Column,
    pub text_pair: Option<Column>,
    pub label: Column,
    pub key: Option<Column>,
    /// Rows whose label is one of these are not examples (the corpus' plot summaries).
    pub skip_labels: Vec<String>,
}

impl DelimitedSpec {
    /// A spec for a user's CSV or TSV file with a header row and the config's column names.
    pub fn from_config(cfg: &DataConfig, delimiter: u8, key: Option<&str>) -> Result<Self> {
        let text = cfg.text_column.as_deref().ok_or_else(|| {
            Error::run_config("data.text_column", "required for csv, tsv and jsonl data")
        })?;
        let label = cfg.label_column.as_deref().ok_or_else(|| {
            Error::run_config("data.label_column", "required for csv, tsv and jsonl data")
        })?;
        Ok(Self {
            delimiter,
            quoting: true,
            has_header: true,
            fields: None,
            text: Column::name(text),
            text_pair: cfg.text_pair_column.as_deref().map(Column::name),
            label: Column::name(label),
            key: key.map(Column::name),
            skip_labels: Vec::new(),
        })
    }
}

/// Positions of the columns a spec asks for, resolved against the header.
struct Resolved {
    text: (usize, String),
    text_pair: Option<(usize, String)>,
    label: (usize, String),
    key: Option<(usize, String)>,
}

/// Reads every example of a delimited file.
pub fn read_delimited(path: &Path, spec: &DelimitedSpec) -> Result<Vec<RawRecord>> {
    // The whole file is read so that line numbers can be counted on its bytes (see `Lines`);
    // the records keep every text of it anyway.
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut lines = Lines::new(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(spec.delimiter)
        .quoting(spec.quoting)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes.as_slice());
    let mut record = csv::ByteRecord::new();
    let mut header: Option<Vec<String>> = None;
    let mut header_line = 1;
    if spec.has_header {
        if !read_row(&mut reader, &mut record, path, &mut lines)? {
            return Err(Error::data(
                path,
                1,
                "the file is empty: expected a header row naming the columns",
            ));
        }
        header_line = lines.of(&record);
        let names = (0..record.len())
            .map(|i| {
                let raw = record.get(i).unwrap_or_default();
                let name = std::str::from_utf8(raw).map_err(|e| {
                    Error::data(
                        path,
                        header_line,
                        format!("invalid UTF-8 in header field {}: {e}", i + 1),
                    )
                })?;
                // A byte-order mark is not part of the first column's name.
                Ok(name.trim_start_matches('\u{feff}').to_string())
            })
            .collect::<Result<Vec<_>>>()?;
        header = Some(names);
    }
    let width = header.as_ref().map(Vec::len).or(spec.fields);
    let cols = resolve(path, spec, header.as_deref(), header_line)?;
    let mut out = Vec::new();
    while read_row(&mut reader, &mut record, path, &mut lines)? {
        let line = lines.of(&record);
        if let Some(w) = width.filter(|&w| w != record.len()) {
            let why = if header.is_some() {
                " (the header's width)"
            } else {
                ""
            };
            return Err(Error::data(
                path,
                line,
                format!(
                    "ragged row: {} fields where {w} expected{why}",
                    record.len()
                ),
            ));
        }
        let field = |(i, name): &(usize, String)| -> Result<String> {
            let raw = record.get(*i).ok_or_else(|| {
                Error::data(
                    path,
                    line,
                    format!(
                        "missing column `{name}`: the row has only {} fields",
                        record.len()
                    ),
                )
            })?;
            std::str::from_utf8(raw).map(str::to_string).map_err(|e| {
                Error::data(path, line, format!("invalid UTF-8 in column `{name}`: {e}"))
            })
        };
        let label = label_value(path, line, &cols.label.1, &field(&cols.label)?)?;
        if spec.skip_labels.contains(&label) {
            continue;
        }
        out.push(RawRecord {
            line,
            text: field(&cols.text)?,
            text_pair: cols.text_pair.as_ref().map(field).transpose()?,
            label,
            key: cols.key.as_ref().map(field).transpose()?,
        });
    }
    Ok(out)
}

/// Reads the next row into `record`; false at the end of the file.
fn read_row<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
    path: &Path,
    lines: &mut Lines<'_>,
) -> Result<bool> {
    reader.read_byte_record(record).map_err(|e| {
        let line = e.position().map_or(0, |p| lines.at_record(p.byte()));
        Error::data(path, line, e.to_string())
    })
}

/// 1-based line numbers of the records, counted on the file's bytes.
///
/// The csv crate's own `Position::line` is not used: it counts the `\n` bytes consumed before a
/// record is read, but with CRLF ends the parser ends a record at the `\r` and consumes its `\n`
/// only when it reads the next record, so every record after the first came out one line too
/// low (and blank lines skipped before a record were not counted at all). Here `\n`, `\r\n` and
/// a lone `\r` (the ends the parser accepts) each end one line, so LF, CRLF and CR copies of a
/// file report the same lines.
struct Lines<'a> {
    bytes: &'a [u8],
    /// Bytes before `offset` have been counted; `line` is the line `offset` is on.
    offset: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line of a record the parser has read (0 when it has no position).
    fn of(&mut self, record: &csv::ByteRecord) -> usize {
        record.position().map_or(0, |p| self.at_record(p.byte()))
    }

    /// The line of the record whose reading began at byte `start`: the parser first skips the
    /// previous record's line end and any blank lines, so the record starts after those.
    fn at_record(&mut self, start: u64) -> usize {
        let len = self.bytes.len();
        let mut at = usize::try_from(start).map_or(len, |s| s.min(len));
        while at < len && matches!(self.bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        if at < self.offset {
            // Records come in file order; recount from the start should one ever not.
            self.offset = 0;
            self.line = 1;
        }
        for i in self.offset..at {
            let end = match self.bytes[i] {
                b'\n' => true,
                b'\r' => self.bytes.get(i + 1) != Some(&b'\n'),
                _ => false,
            };
            self.line += usize::from(end);
        }
        self.offset = at;
        self.line
    }
}

fn resolve(
    path: &Path,
    spec: &DelimitedSpec,
    header: Option<&[String]>,
    header_line: usize,
) -> Result<Resolved> {
    let find = |col: &Column, field: &str| -> Result<(usize, String)> {
        match (col, header) {
            (Column::Index(i), _) => Ok((*i, format!("#{}", i + 1))),
            (Column::Name(name), Some(h)) => h
                .iter()
                .position(|c| c == name)
                .map(|i| (i, name.clone()))
                .ok_or_else(|| {
                    Error::data(
                        path,
                        header_line,
                        format!(
                            "missing column `{name}` (named by {field}); the header has: {}",
                            h.join(", ")
                        ),
                    )
                }),
            (Column::Name(name), None) => Err(Error::data(
                path,
                0,
                format!("column `{name}` ({field}) cannot be found: the file has no header row"),
            )),
        }
    };
    Ok(Resolved {
        text: find(&spec.text, "data.text_column")?,
        text_pair: spec
            .text_pair
            .as_ref()
            .map(|c| find(c, "data.text_pair_column"))
            .transpose()?,
        label: find(&spec.label, "data.label_column")?,
        key: spec
            .key
            .as_ref()
            .map(|c| find(c, "partition.key"))
            .transpose()?,
    })
}
