//! A table as wide CSV: one line per row, `mean`, `std` and `n` columns per cell (and the
//! reference value where the table has one), numbers exact.
use super::Table;

/// The CSV text of `t`.
pub fn table_csv(t: &Table) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![t.row_title.clone()];
    for (ci, c) in t.columns.iter().enumerate() {
        header.extend([format!("{c}_mean"), format!("{c}_std"), format!("{c}_n")]);
        if t.has_reference(ci) {
            header.push(format!("{c}_reference"));
        }
    }
    w.write_record(&header)?;
    for (ri, row) in t.rows.iter().enumerate() {
        let mut rec = vec![row.clone()];
        for ci in 0..t.columns.len() {
            match &t.cells[ri][ci] {
                Some(c) => rec.extend([format!("{}", c.mean), format!("{}", c.std), c.n.to_string()]),
                None => rec.extend([String::new(), String::new(), "0".to_string()]),
            }
            if t.has_reference(ci) {
                rec.push(t.references[ri][ci].as_ref().map(|r| format!("{}", r.value)).unwrap_or_default());
            }
        }
        w.write_record(&rec)?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
