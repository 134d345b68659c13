//! The content-addressed store: `<store>/<kind>/<key>/` entries with a manifest,
//! published atomically under a per-key lock.
mod atomic;
mod entry;
mod gc;
mod key;
mod lock;
mod manifest;
mod paths;
mod pins;
mod records;

pub use atomic::{new_folder, write_atomic};
pub use entry::{sha256_file, EntryState, KindName, PendingEntry, Store, StoreError, MANIFEST_DIGEST};
pub use gc::{gc, remove_stale_work_folders, GcReport};
pub use key::{canonical_json, Key};
pub use lock::KeyLock;
pub use manifest::{Artefact, CostFacts, Manifest, MetricRow};
pub use pins::Pins;
pub use records::{Record, Records};
