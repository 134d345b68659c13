//! Planning: sweep variants -> stage instances -> dependency graph -> keys.
mod build;
mod decision;
mod error;
mod estimate;
mod graph;
mod held_out;
mod instance;
mod memory;
mod reasons;
mod render;
mod table;

pub use build::{build_plan, ktlab_version, libtorch_version, DevicePolicy, PlanEnv};
pub use decision::{validate_decisions, DecisionLayers, DecisionSpec, Selector};
pub use error::{PlanError, MAX_REPORTED};
pub use estimate::{
    cost_facts, cost_facts_of, estimate, estimate_plan, threads_here, work, Estimate, History, PlanEstimate, Source, CUDA_SPEED_UP, MODEL,
};
pub use graph::topo_order;
pub use instance::{Plan, PlannedInput, StageInstance, Variant};
pub use memory::{human_bytes, largest, largest_on_host, machine_memory, memory_plan, Memory};
pub use reasons::{state_of, InstanceState};
pub use render::{human_seconds, render_explain, render_instances, render_plan, render_table};
pub use table::{short_key, validate_tables, Axis, Reference, TableSpec, DECISIONS, NO_LAYER, RESERVED_NAMES, TRAINING_CURVES};
