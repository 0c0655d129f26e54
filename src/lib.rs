//! ebbflow: a metric-driven autoscaler for Google Cloud that runs as a Kubernetes controller.
//!
//! - [`api`]: the `ScalePolicy` custom resource.
//! - [`core`]: the pure decision core (smoothing, spike detection, cooldown state machine), the
//!   `ebbflow-core` crate.
//! - [`spec`]: spec → policy: the field checks and the conversion into the core's domain types.
//! - [`adapters`]: the ports every backend implements (`MetricSource`, `ScaleTarget`).
//! - [`kinds`]: one descriptor per target kind (identity, project, warm-up, checks, adapter).
//! - [`known`]: schedules and overrides: spec checks and conversion, status entries.
//! - [`commands`]: `ebbflow override`, `pause`, `resume`, `schedules` (also `kubectl ebbflow`).
//! - [`tick`]: gather → decide → actuate, shared by the controller and the simulator.
//! - [`members`]: the same per member of a target sized each on its own (a replicated Bigtable
//!   instance in `perCluster` mode), with the floor at a fraction of the largest.
//! - [`crd`]: CRD generation and policy file parsing.
//! - [`policyfiles`]: loading a directory of policy files, and the checks across them.
//! - [`controller`]: `ebbflow run`, in a cluster or standalone.
//! - [`sim`]: `ebbflow simulate`, replaying recorded metrics through the same tick (and its HTML report).
//! - [`gcp`]: Google Cloud adapters (Cloud Monitoring, Bigtable, GKE), and, with the `fake` feature
//!   (on for tests and benchmarks only), a local fake of their APIs.
//! - [`chart`]: the SVG time-series chart shared by the simulator and the dashboard.
//! - [`readout`]: `ebbflow status`, the ops readout (pure rows and text, shared with the dashboard).
//! - [`dashboard`]: the controller's web page and JSON API.
//! - [`demo`]: `ebbflow demo`, the controller and dashboard against a simulated cluster.
//! - [`excerpt`]: short, printable quotes of user input for error messages.

pub mod adapters;
pub mod api;
pub mod chart;
pub mod clock;
pub mod commands;
pub mod controller;
/// The decision core, its own crate (`ebbflow-core`) so the compiler keeps it pure; re-exported
/// here so `ebbflow::core::...` paths keep working.
pub use ebbflow_core as core;
pub mod crd;
pub mod dashboard;
pub mod demo;
pub mod excerpt;
pub mod gcp;
pub mod kinds;
pub mod known;
pub mod members;
pub mod policyfiles;
pub mod readout;
pub mod sim;
pub mod spec;
pub mod tick;
