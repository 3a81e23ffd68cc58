//! Spreadsheets: XLSX/XLSB streamed under the cell budget, XLS and ODS through calamine, CSV and TSV.

use std::io::Cursor;

use lore_core::budget::{budgets, exceeded};
use lore_core::error::{Code, Error, Result};
use serde_json::json;

use super::*;

pub(crate) fn cell_text(value: &calamine::Data) -> String {
    match value {
        calamine::Data::Empty => String::new(),
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string(),
    }
}

/// A sheet as a Markdown table, its first non-empty row the header (chunking repeats it over
/// every piece of a long sheet); empty rows are dropped.
pub(crate) fn rows_with_headers(b: &mut Builder, rows: impl Iterator<Item = Vec<String>>) {
    b.table(rows.filter(|row| row.iter().any(|c| !c.trim().is_empty())).collect());
}

/// XLSX, XLS and ODS, sheet by sheet.
///
/// A sheet is read as a dense grid of its used range, so one cell at A1 and one at XFD1048576
/// would ask for 17 billion cells: XLSX and XLSB sheets are streamed cell by cell and refused
/// (`too_many_cells`) as soon as their range spans more than `max_sheet_cells`, before the grid
/// is built; XLS and ODS (which calamine reads whole, within the format's own bounds) are
/// checked once read. Zip-based workbooks must also stay within `max_expanded_bytes`.
pub fn workbook(bytes: &[u8], what: &'static str) -> Result<Builder> {
    let mut b = Builder::default();
    for (name, rows) in workbook_sheets(bytes, what)? {
        b.mark("sheet", json!(name));
        b.paragraph(&format!("## Sheet: {name}"));
        rows_with_headers(&mut b, rows.into_iter());
    }
    Ok(b)
}

/// Each readable sheet of a workbook, by name, as rows of cell texts (its first row usually
/// its headers), within the same budgets as [`workbook`].
pub fn workbook_sheets(bytes: &[u8], what: &'static str) -> Result<Vec<(String, Vec<Vec<String>>)>> {
    if what != "Excel 97-2003" && bytes.starts_with(b"\xd0\xcf\x11\xe0") {
        Archive::open(bytes, what)?; // reports the password protection
    }
    if bytes.starts_with(b"PK") {
        // calamine inflates the parts itself, without a cap: measure them first.
        Archive::open(bytes, what)?.check_expanded_size()?;
    }
    let mut sheets = calamine::open_workbook_auto_from_rs(Cursor::new(bytes.to_vec())).map_err(|e| {
        let text = e.to_string();
        if text.to_lowercase().contains("password") || text.to_lowercase().contains("encrypt") {
            Error::new(
                Code::CorruptFile,
                format!("this {what} file is password-protected; remove the password and upload it again"),
            )
        } else {
            corrupt(what, text)
        }
    })?;
    use calamine::Reader;
    let max_cells = budgets().max_sheet_cells;
    let mut out = Vec::new();
    for name in sheets.sheet_names() {
        // A sheet that cannot be read (a chart sheet, a broken part) is skipped, as calamine's
        // `worksheets()` does.
        let range = match &mut sheets {
            calamine::Sheets::Xlsx(x) => match x.worksheet_cells_reader(&name) {
                Ok(mut cells) => sparse_range(&name, max_cells, || cells.next_cell().map_err(drop))?,
                Err(_) => None,
            },
            calamine::Sheets::Xlsb(x) => match x.worksheet_cells_reader(&name) {
                Ok(mut cells) => sparse_range(&name, max_cells, || cells.next_cell().map_err(drop))?,
                Err(_) => None,
            },
            other => other.worksheet_range(&name).ok(),
        };
        let Some(range) = range else { continue };
        let (rows, cols) = range.get_size();
        check_sheet_span(&name, rows as u64, cols as u64, max_cells)?;
        let rows = range.rows().map(|r| r.iter().map(cell_text).collect()).collect();
        out.push((name, rows));
    }
    Ok(out)
}

pub(crate) fn check_sheet_span(name: &str, rows: u64, cols: u64, max_cells: u64) -> Result<()> {
    let cells = rows.saturating_mul(cols);
    if cells > max_cells {
        return Err(exceeded(
            Code::TooManyCells,
            format!(
                "the sheet '{name}' spans {rows} rows by {cols} columns ({cells} cells), more than the {max_cells} \
                 cells a sheet may span"
            ),
            "max-sheet-cells",
        ));
    }
    Ok(())
}

/// The non-empty cells of a sheet, streamed, into a range; refused as soon as their bounding
/// box (or their number) passes `max_cells`. `None` when the sheet cannot be read.
pub(crate) fn sparse_range<'a>(
    name: &str, max_cells: u64,
    mut next: impl FnMut() -> std::result::Result<Option<calamine::Cell<calamine::DataRef<'a>>>, ()>,
) -> Result<Option<calamine::Range<calamine::Data>>> {
    let mut cells = Vec::new();
    let (mut top, mut bottom, mut left, mut right) = (u32::MAX, 0u32, u32::MAX, 0u32);
    loop {
        let cell = match next() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(_) => return Ok(None),
        };
        if matches!(cell.get_value(), calamine::DataRef::Empty) {
            continue;
        }
        let (row, col) = cell.get_position();
        (top, bottom, left, right) = (top.min(row), bottom.max(row), left.min(col), right.max(col));
        let rows = u64::from(bottom - top) + 1;
        let cols = u64::from(right - left) + 1;
        check_sheet_span(name, rows, cols, max_cells)?;
        if cells.len() as u64 >= max_cells {
            // The same cells over and over.
            return Err(exceeded(
                Code::TooManyCells,
                format!("the sheet '{name}' holds more than the {max_cells} cells a sheet may span"),
                "max-sheet-cells",
            ));
        }
        let value: calamine::Data = cell.get_value().clone().into();
        cells.push(calamine::Cell::new((row, col), value));
    }
    Ok(Some(calamine::Range::from_sparse(cells)))
}

/// CSV or TSV text (already decoded), rows with their headers.
pub fn delimited(text: &str, delimiter: u8) -> Result<Builder> {
    let mut b = Builder::default();
    rows_with_headers(&mut b, delimited_rows(text, delimiter)?.into_iter());
    Ok(b)
}

/// The records of CSV or TSV text (already decoded), as cell texts.
pub fn delimited_rows(text: &str, delimiter: u8) -> Result<Vec<Vec<String>>> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| corrupt(if delimiter == b'\t' { "TSV" } else { "CSV" }, e))?;
        rows.push(record.iter().map(str::to_string).collect::<Vec<_>>());
    }
    Ok(rows)
}
