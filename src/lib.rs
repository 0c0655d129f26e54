//! ebbflow: a metric-driven autoscaler for Google Cloud that runs as a Kubernetes controller.
//!
//! - [`api`]: the `ScalePolicy` custom resource.
//! - [`core`]: the pure decision core (smoothing, spike detection, cooldown state machine).
//! - [`crd`]: CRD generation and policy file loading.

pub mod api;
pub mod core;
pub mod crd;
