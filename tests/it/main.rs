//! The integration tests, as one test binary: each file was its own binary, and each linked the
//! whole crate (32 links of a debug build after every change). A test that needs a process of
//! its own stays a file of its own under `tests/` (`http_limits`, which counts the process's
//! open files). `controller_e2e` needs a real cluster: its tests are ignored unless asked for.
//!
//! Run one file's tests with `cargo test --test it FILE::`, e.g.
//! `UPDATE_GOLDEN=1 cargo test --test it simulations::`.

/// Counts each thread's allocations, for `replay_allocations`; otherwise the system allocator.
#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

mod browser_support;
mod controller_support;
mod gcp_support;

mod bigtable_instance;
mod chart_snapshot;
mod closed_loop;
mod controller_deploy;
mod controller_e2e;
mod controller_gcp;
mod controller_known;
mod controller_mock;
mod controller_replicas;
mod controller_standalone;
mod controller_workload;
mod dashboard_api;
mod dashboard_browser;
mod demo;
mod docs_figures;
mod examples;
mod fuzz_inputs;
mod gcp_gcloud;
mod gcp_monitoring;
mod gcp_spanner;
mod gcp_targets;
mod gke_drain;
mod guard_metric;
mod hostile_inputs;
mod kube_metrics;
mod replay_allocations;
mod report_browser;
mod shards;
mod simulations;
mod standalone_hardening;
mod standalone_startup;
mod status_readout;
mod tune;
