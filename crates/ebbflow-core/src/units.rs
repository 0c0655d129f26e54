//! The units of the Cloud Monitoring metrics ebbflow knows, and the check that keeps a level (a
//! target, a guard's level, a headroom limit) inside its metric's range.
//!
//! Bigtable's `cpu_load` is a fraction (0–1). A person used to percent writes `target: 60`, and
//! nothing in the arithmetic objects: a cluster held at "60" never reads above it, so the policy
//! walks it down to `minSize`. Each metric type listed here carries its unit, so such a level is
//! refused with the fix. Only types whose unit is documented are listed: an unknown type (a
//! custom metric, a Kubernetes source) is not checked.
//!
//! ```text
//! perNode level of a fraction metric      ≤ 1
//! total level of a fraction metric        ≤ 1 × maxSize   (a total of at most maxSize shares)
//! level of a count or rate                no upper bound
//! ```

use crate::policy::MetricKind;

/// What a metric's values measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A share of a capacity, 0 to 1: a utilization such as CPU load or storage used.
    Fraction,
    /// A count of items or events, or a rate of them: 0 or more, with no upper bound.
    Count,
}

impl Unit {
    /// The largest value one series of the metric takes, when there is one.
    pub fn max(self) -> Option<f64> {
        match self {
            Unit::Fraction => Some(1.0),
            Unit::Count => None,
        }
    }

    /// The unit as messages name it: "a fraction (0-1)".
    pub fn describe(self) -> &'static str {
        match self {
            Unit::Fraction => "a fraction (0-1)",
            Unit::Count => "a count or rate (0 or more, no upper bound)",
        }
    }
}

/// A Cloud Monitoring metric type whose unit is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KnownMetric {
    /// The metric type, e.g. `bigtable.googleapis.com/cluster/cpu_load`.
    pub metric_type: &'static str,
    /// Its unit.
    pub unit: Unit,
}

/// Every metric type whose unit is known, each as Google documents it.
pub const KNOWN_METRICS: &[KnownMetric] = &[
    KnownMetric { metric_type: "bigtable.googleapis.com/cluster/cpu_load", unit: Unit::Fraction },
    KnownMetric { metric_type: "bigtable.googleapis.com/cluster/cpu_load_hottest_node", unit: Unit::Fraction },
    KnownMetric { metric_type: "bigtable.googleapis.com/cluster/storage_utilization", unit: Unit::Fraction },
    KnownMetric { metric_type: "bigtable.googleapis.com/server/request_count", unit: Unit::Count },
    KnownMetric { metric_type: "spanner.googleapis.com/instance/cpu/utilization", unit: Unit::Fraction },
    KnownMetric { metric_type: "spanner.googleapis.com/instance/cpu/utilization_by_priority", unit: Unit::Fraction },
    KnownMetric { metric_type: "compute.googleapis.com/instance/cpu/utilization", unit: Unit::Fraction },
    KnownMetric { metric_type: "kubernetes.io/node/cpu/allocatable_utilization", unit: Unit::Fraction },
    KnownMetric { metric_type: "kubernetes.io/container/cpu/limit_utilization", unit: Unit::Fraction },
    KnownMetric { metric_type: "loadbalancing.googleapis.com/https/request_count", unit: Unit::Count },
    KnownMetric { metric_type: "loadbalancing.googleapis.com/https/backend_request_count", unit: Unit::Count },
    KnownMetric { metric_type: "pubsub.googleapis.com/subscription/num_undelivered_messages", unit: Unit::Count },
];

/// The known metric of this type, if its unit is known.
pub fn lookup(metric_type: &str) -> Option<&'static KnownMetric> {
    KNOWN_METRICS.iter().find(|k| k.metric_type == metric_type)
}

/// Every metric type a Cloud Monitoring filter selects by equality, `metric.type="..."` (spaces
/// around `=` allowed), in the order written. Other forms (`starts_with(...)`, `!=`) select no
/// single type and are left out.
pub fn metric_types(filter: &str) -> Vec<&str> {
    const FIELD: &str = "metric.type";
    let bytes = filter.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = filter[from..].find(FIELD) {
        let start = from + at;
        let end = start + FIELD.len();
        from = end;
        // `resource.labels.metric.type` or `my_metric.type` is another field.
        if start > 0 && is_name_byte(bytes[start - 1]) {
            continue;
        }
        let Some(rest) = filter[end..].trim_start().strip_prefix('=') else { continue };
        let rest = rest.trim_start();
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else { continue };
        let value = &rest[quote.len_utf8()..];
        if let Some(close) = value.find(quote) {
            out.push(&value[..close]);
        }
    }
    out
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

/// The one metric type a filter selects: `None` when it names none, or several different ones
/// (then no single unit applies).
pub fn metric_type(filter: &str) -> Option<&str> {
    let types = metric_types(filter);
    let first = *types.first()?;
    types.iter().all(|t| *t == first).then_some(first)
}

/// The known metric a filter selects, if it selects one type and its unit is known.
pub fn of_filter(filter: &str) -> Option<&'static KnownMetric> {
    metric_type(filter).and_then(lookup)
}

impl KnownMetric {
    /// The highest level a policy can hold this metric at: for a per-node metric the unit's
    /// maximum; for a total, what `max_size` series at that maximum add up to (a level above it
    /// is never reached). `None` for a unit without a maximum.
    pub fn level_bound(&self, kind: MetricKind, max_size: u32) -> Option<f64> {
        let max = self.unit.max()?;
        Some(match kind {
            MetricKind::PerNode => max,
            MetricKind::Total => max * f64::from(max_size.max(1)),
        })
    }

    /// What is wrong with holding this metric at `level` (a target, a guard's level or a headroom
    /// limit) on a policy of at most `max_size` nodes, with the fix; `None` when it is in range.
    /// A level that is not a positive number is left to the caller's own check.
    pub fn level_problem(&self, level: f64, kind: MetricKind, max_size: u32) -> Option<String> {
        let bound = self.level_bound(kind, max_size)?;
        if !(level.is_finite() && level > bound) {
            return None;
        }
        let (name, unit) = (self.metric_type, self.unit.describe());
        Some(match kind {
            MetricKind::PerNode => {
                format!("{} is above {}, but {name} is {unit}: {}", number(level), number(bound), percent_fix(level))
            }
            MetricKind::Total => format!(
                "{} is above {}, but {name} is {unit}: a total of it over at most maxSize ({}) nodes stays at or \
                 under {}, so this level is never reached; write the share one node carries, e.g. {}",
                number(level),
                number(bound),
                max_size.max(1),
                number(bound),
                percent_example(level),
            ),
        })
    }
}

/// The fix for a level written in percent where a fraction is meant: "write 0.6 for 60 %" when
/// it reads as a percent, else how to write one.
pub fn percent_fix(level: f64) -> String {
    if level > 1.0 && level <= 100.0 {
        format!("write {}", percent_example(level))
    } else {
        format!("write it as a fraction, e.g. {}", percent_example(level))
    }
}

/// "0.6 for 60 %": the fraction a percent level stands for, or that example when it is no
/// percent.
fn percent_example(level: f64) -> String {
    if level > 1.0 && level <= 100.0 {
        format!("{} for {} %", number(level / 100.0), number(level))
    } else {
        "0.6 for 60 %".into()
    }
}

/// A number as a person wrote it, in exponent form when very large or small so a message stays
/// short (`f64`'s `Display` writes 1e308 with 309 digits).
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && a.is_finite() && !(1e-6..1e15).contains(&a) { format!("{v:e}") } else { format!("{v}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_type_is_found_in_a_filter_as_people_write_it() {
        let cpu = "bigtable.googleapis.com/cluster/cpu_load";
        for filter in [
            "metric.type=\"bigtable.googleapis.com/cluster/cpu_load\"",
            "metric.type = \"bigtable.googleapis.com/cluster/cpu_load\" AND resource.labels.cluster=\"c1\"",
            "resource.type=\"bigtable_cluster\" AND\n  metric.type=\n\"bigtable.googleapis.com/cluster/cpu_load\"",
            "metric.type='bigtable.googleapis.com/cluster/cpu_load'",
            "metric.type=\"bigtable.googleapis.com/cluster/cpu_load\" OR metric.type=\"bigtable.googleapis.com/cluster/cpu_load\"",
        ] {
            assert_eq!(metric_type(filter), Some(cpu), "{filter}");
            assert_eq!(of_filter(filter).map(|k| k.unit), Some(Unit::Fraction), "{filter}");
        }
        // Not the field, not an equality, or two different types: no single type, nothing known.
        for filter in [
            "resource.labels.metric.type=\"bigtable.googleapis.com/cluster/cpu_load\"",
            "metric.type != \"bigtable.googleapis.com/cluster/cpu_load\"",
            "metric.type = starts_with(\"bigtable.googleapis.com/cluster/\")",
            "metric.type_x=\"bigtable.googleapis.com/cluster/cpu_load\"",
            "metric.type=\"bigtable.googleapis.com/cluster/cpu_load\" OR metric.type=\"compute.googleapis.com/instance/cpu/utilization\"",
            "metric.type=\"bigtable.googleapis.com/cluster/cpu_load",
            "",
        ] {
            assert_eq!(of_filter(filter), None, "{filter}");
        }
        assert_eq!(metric_type("metric.type=\"custom.googleapis.com/x\""), Some("custom.googleapis.com/x"));
        assert_eq!(of_filter("metric.type=\"custom.googleapis.com/x\""), None, "a custom metric is not checked");
    }

    #[test]
    fn a_percent_level_on_a_fraction_metric_is_refused_with_the_fraction_to_write() {
        let cpu = lookup("bigtable.googleapis.com/cluster/cpu_load").expect("known");
        assert_eq!(
            cpu.level_problem(60.0, MetricKind::PerNode, 30).as_deref(),
            Some("60 is above 1, but bigtable.googleapis.com/cluster/cpu_load is a fraction (0-1): write 0.6 for 60 %")
        );
        let fix = cpu.level_problem(51.0, MetricKind::PerNode, 30).expect("refused");
        assert!(fix.ends_with("write 0.51 for 51 %"), "{fix}");
        let fix = cpu.level_problem(1e308, MetricKind::PerNode, 30).expect("refused");
        assert!(fix.starts_with("1e308 is above 1") && fix.ends_with("e.g. 0.6 for 60 %"), "{fix}");
        for fine in [0.6, 1.0, 0.001] {
            assert_eq!(cpu.level_problem(fine, MetricKind::PerNode, 30), None, "{fine}");
        }
        // Not a positive number: the spec's own check says so.
        assert_eq!(cpu.level_problem(f64::NAN, MetricKind::PerNode, 30), None);
    }

    /// A total of a fraction over at most maxSize nodes never exceeds maxSize: a level above it
    /// is never reached; at or under it, it can be.
    #[test]
    fn a_total_of_a_fraction_is_bounded_by_max_size() {
        let cpu = lookup("kubernetes.io/node/cpu/allocatable_utilization").expect("known");
        assert_eq!(cpu.level_bound(MetricKind::Total, 40), Some(40.0));
        assert_eq!(cpu.level_problem(30.0, MetricKind::Total, 40), None);
        let why = cpu.level_problem(60.0, MetricKind::Total, 40).expect("refused");
        assert!(why.starts_with("60 is above 40") && why.contains("maxSize (40)"), "{why}");
        assert!(why.ends_with("write the share one node carries, e.g. 0.6 for 60 %"), "{why}");
    }

    #[test]
    fn a_count_has_no_upper_bound() {
        let requests = lookup("loadbalancing.googleapis.com/https/request_count").expect("known");
        assert_eq!(requests.unit, Unit::Count);
        for kind in [MetricKind::PerNode, MetricKind::Total] {
            assert_eq!(requests.level_bound(kind, 10), None);
            assert_eq!(requests.level_problem(1e9, kind, 10), None);
        }
    }

    #[test]
    fn every_known_type_is_listed_once() {
        for (i, k) in KNOWN_METRICS.iter().enumerate() {
            assert!(!KNOWN_METRICS[..i].iter().any(|o| o.metric_type == k.metric_type), "{}", k.metric_type);
            assert_eq!(lookup(k.metric_type), Some(k));
        }
    }

    #[test]
    fn numbers_stay_short() {
        assert_eq!(number(60.0), "60");
        assert_eq!(number(0.75), "0.75");
        assert_eq!(number(1e308), "1e308");
        assert_eq!(number(0.0), "0");
    }
}
