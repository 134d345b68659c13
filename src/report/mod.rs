//! Result tables of an experiment, read only from the store.
mod csv_table;
mod latex;
mod markdown;
mod provenance;
mod results;
mod table;
mod write;

pub use csv_table::table_csv;
pub use latex::{escape as latex_escape, table_latex};
pub use markdown::table_markdown;
pub use provenance::{find_cell, instance as instance_provenance, provenance};
pub use results::{collect_rows, write_results, ResultRow};
pub use table::{default_tables, tables, Cell, Table};
pub use write::{write_tables, WrittenTable};

#[cfg(test)]
mod snapshot_tests;
