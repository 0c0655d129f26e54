//! The ops readout: what each policy is doing and why, computed from its spec and status.
//!
//! Pure: policies and `now` in, rows and text out. `ebbflow status` ([`cli`]) and the dashboard
//! ([`crate::dashboard`]) both read from here, so the terminal and the browser never disagree
//! about what a policy is waiting for.
//!
//! The readout reads only the status the controller wrote (the same fields `kubectl get -o yaml`
//! shows). It never re-derives a decision: when it says "scale-in blocked: cooldown until 14:32",
//! that time is the controller's `status.cooldown.scaleInAllowedAt`.

pub mod cli;
pub mod day;
pub mod history;
mod model;
pub mod published;
mod text;
pub mod timeline;

pub use model::{
    Detail, Health, LastDecision, Level, MetricCell, PolicyView, Row, Shortfall, Timer, clock_time, detail, figures,
    human, limit_of, metric_cells, num, overdue, overdue_of, row, shown_operation, why,
};
pub use text::{Paint, explain, stdout_paint, table};
