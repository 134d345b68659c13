//! Result tables and plots of an experiment, read only from the store.
mod axes;
mod bitmap;
mod csv_table;
mod curves;
mod decision;
mod decision_files;
mod draw;
mod figure;
mod folder;
mod html;
mod latex;
mod layout;
mod markdown;
mod provenance;
mod provenance_check;
mod results;
mod table;
mod table_plot;
mod tensorboard;
mod typeface;
mod write;

pub use csv_table::table_csv;
pub use curves::{collect_histories, curve_files, History};
pub use decision::{decide, Comparison, Decided, Outcome, Selection, Side};
pub use decision_files::{decision_line, decisions_csv, decisions_markdown, write_decisions};
pub use folder::StagedFolder;
pub use html::{cell_id, write_html, INDEX_HTML};
pub use latex::{escape as latex_escape, table_latex};
pub use markdown::table_markdown;
pub use provenance::{computed_at, find_cell, instance as instance_provenance, provenance, provenance_instances};
pub use provenance_check::{check_provenance, planned_rows, ProvenanceCheck};
pub use results::{collect_rows, results_owner_conflict, write_results, ResultRow};
pub use table::{default_tables, table_specs, tables, Cell, Table};
pub use tensorboard::{tensorboard_list, write_tensorboard_list, TENSORBOARD_LIST};
pub use write::{write_curve_files, write_tables, write_training_curves, WrittenTable, CURVES_DIR};

#[cfg(test)]
mod snapshot_tests;
