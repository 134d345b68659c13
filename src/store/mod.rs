//! The content-addressed store: `<store>/<kind>/<key>/` entries with a manifest,
//! published atomically under a per-key lock.
pub mod artefacts;
mod entry;
mod gc;
mod key;
mod lock;
mod manifest;
mod records;

pub use entry::{EntryState, PendingEntry, Store, StoreError};
pub use gc::{gc, GcReport};
pub use key::{canonical_json, Key};
pub use lock::KeyLock;
pub use manifest::{Artefact, Manifest};
pub use records::{Record, Records};
