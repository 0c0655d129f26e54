//! Metric sources that plug in: one descriptor per source, the counterpart of the target kinds
//! (`crate::kinds`).
//!
//! Everything the program knows about a source (its part of a metric's spec as it is on the wire,
//! the checks of those fields, how they resolve into the query its adapter answers) is one
//! [`SourceKind`] implementation, on the source's spec type, in the source's own file. The sources
//! are registered in one list, `metric_sources!` at the end of this file, which generates the
//! wire struct [`MetricSourceSpec`] (flattened into `api::MetricSpec`, so each source is a field
//! of the metric: `query`, `kubernetes`), the [`MetricQuery`] enum, the routing [`Sources`] and
//! the dispatch between them; nothing else matches on the source.
//!
//! A new source is one new file (its spec type, its [`SourceKind`] impl, its resolved query)
//! plus one line in that list; the process that should answer it live also builds its adapter
//! (`controller/backends.rs`), as a target kind's adapter is built by its kind.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::adapters::kubernetes::KubernetesQuery;
use crate::adapters::monitoring::MonitoringSpec;
use crate::adapters::{AdapterError, MetricSource, Series};
use crate::core::Ts;

/// What a source may take from the policy around its metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceContext<'a> {
    /// The target's project, which Cloud Monitoring queries default to; `None` when the target
    /// kind has none (a workload).
    pub project: Option<&'a str>,
    /// The policy's namespace, which Kubernetes reads are confined to. Empty when a spec is
    /// checked on its own (`spec::policy_from_spec`): checks must not depend on it.
    pub namespace: &'a str,
}

/// One problem with a source's fields: the path under the source's own field (e.g.
/// `replicas.apiVersion` under `kubernetes`), and what is wrong and how to fix it.
pub type SourceIssue = (String, String);

/// What the program knows about one metric source. Implemented by the source's spec type (its
/// part of `spec.metrics[i]`).
pub trait SourceKind {
    /// How messages name the source's field, e.g. `query (Cloud Monitoring)`.
    const LABEL: &'static str;
    /// What a metric sets to read this source, for the message when a metric names none, e.g.
    /// `a Cloud Monitoring query`.
    const WHAT: &'static str;
    /// Whether answering the source needs a Kubernetes API (standalone mode builds a client
    /// only when a policy needs one).
    const NEEDS_KUBE: bool = false;
    /// The query, resolved for one policy: what the source's adapter answers.
    type Query: std::fmt::Debug + Clone + PartialEq + Eq + std::hash::Hash + Send + Sync;
    /// Problems with the source's fields, in field order.
    fn check(&self, ctx: &SourceContext) -> Vec<SourceIssue>;
    /// The query for a spec that passed [`SourceKind::check`].
    fn query(&self, ctx: &SourceContext) -> Self::Query;
}

/// A source this process does not have (e.g. Kubernetes in standalone mode without a
/// kubeconfig): every query fails with the reason.
pub struct NoSource(pub AdapterError);

impl MetricSource for NoSource {
    async fn fetch(&self, _: &MetricQuery, _: Ts, _: Ts) -> Result<Series, AdapterError> {
        Err(self.0.clone())
    }
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(items: &[&str], last: &str) -> String {
    match items.split_last() {
        Some((tail, [])) => tail.to_string(),
        Some((tail, head)) => format!("{}{last}{tail}", head.join(", ")),
        None => String::new(),
    }
}

/// Declares the wire struct [`MetricSourceSpec`] (one optional field per source), the
/// [`MetricQuery`] enum (one variant per source), the routing [`Sources`] (one adapter per
/// source) and the dispatch between them: the one place metric sources are registered. Each
/// line: the field's attributes (its doc becomes the CRD field's description), then
/// `field: Variant(SpecType) by router_field: TypeParam`. The first line's source answers for a
/// metric that names none (which the checks refuse): its spec type's `Default`.
macro_rules! metric_sources {
    ($(#[$fattr:meta])* $ffield:ident: $fvariant:ident($fspec:ty) by $frouter:ident: $fparam:ident,
     $($(#[$attr:meta])* $field:ident: $variant:ident($spec:ty) by $router:ident: $param:ident,)*) => {
        metric_sources!(@declare ($fvariant, $fspec)
            $(#[$fattr])* $ffield: $fvariant($fspec) by $frouter: $fparam,
            $($(#[$attr])* $field: $variant($spec) by $router: $param,)*);
    };
    (@declare ($first:ident, $first_spec:ty)
     $($(#[$attr:meta])* $field:ident: $variant:ident($spec:ty) by $router:ident: $param:ident,)*) => {
        /// A metric's source, as it is on the wire: one field per registered source, flattened
        /// into `api::MetricSpec`. Exactly one must be set (a CEL rule on the metric, and
        /// [`MetricSourceSpec::check`]).
        #[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
        #[serde(rename_all = "camelCase")]
        pub struct MetricSourceSpec {
            $(
                $(#[$attr])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$spec>,
            )*
        }

        impl MetricSourceSpec {
            /// The CEL rule that exactly one source is set.
            pub fn one_of_rule() -> String {
                let set = [$(concat!("has(self.", stringify!($field), ")")),*];
                format!("[{}].filter(x, x).size() == 1", set.join(", "))
            }

            /// The message of [`MetricSourceSpec::one_of_rule`].
            pub fn one_of_message() -> String {
                format!("set exactly one of {}", one_of(&[$(<$spec as SourceKind>::LABEL),*], " or "))
            }

            /// Problems with the source: none set, several set, or the set one's own, each as
            /// the path under the metric (e.g. `query.filter`) and the message.
            pub fn check(&self, ctx: &SourceContext) -> Vec<SourceIssue> {
                let set: Vec<&'static str> = [$(self.$field.as_ref().map(|_| stringify!($field))),*]
                    .into_iter()
                    .flatten()
                    .collect();
                match set.as_slice() {
                    [] => {
                        let first = [$(stringify!($field)),*][0];
                        let what = one_of(&[$(<$spec as SourceKind>::WHAT),*], ", or ");
                        vec![(first.to_string(), format!("each metric needs a source: {what}"))]
                    }
                    [_] => {
                        let mut issues = Vec::new();
                        $(
                            if let Some(s) = &self.$field {
                                let within = SourceKind::check(s, ctx);
                                issues.extend(within.into_iter().map(|(path, m)| (format!("{}.{path}", stringify!($field)), m)));
                            }
                        )*
                        issues
                    }
                    [_, second, ..] => {
                        let labels = one_of(&[$(<$spec as SourceKind>::LABEL),*], " or ");
                        let other = if set.len() > 2 { "others" } else { "other" };
                        vec![(second.to_string(), format!("set only one of {labels}; remove the {other}"))]
                    }
                }
            }

            /// Whether the source that is set needs a Kubernetes API to be answered.
            pub fn needs_kube(&self) -> bool {
                false $(|| (self.$field.is_some() && <$spec as SourceKind>::NEEDS_KUBE))*
            }

            /// The query of the source that is set (the first, if several are). A metric with
            /// none (refused by [`MetricSourceSpec::check`]) resolves to the first registered
            /// source's default, which its adapter answers with an error.
            pub fn query(&self, ctx: &SourceContext) -> MetricQuery {
                $(
                    if let Some(s) = &self.$field {
                        return MetricQuery::$variant(SourceKind::query(s, ctx));
                    }
                )*
                MetricQuery::$first(SourceKind::query(&<$first_spec>::default(), ctx))
            }
        }

        /// A metric query, by the source that answers it: one variant per registered source.
        /// [`Sources`] routes each variant to its adapter.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum MetricQuery {
            $(
                #[doc = concat!("A query of the `", stringify!($field), "` source.")]
                $variant(<$spec as SourceKind>::Query),
            )*
        }

        $(
            impl From<<$spec as SourceKind>::Query> for MetricQuery {
                fn from(q: <$spec as SourceKind>::Query) -> MetricQuery {
                    MetricQuery::$variant(q)
                }
            }
        )*

        /// The metric sources' adapters, one per [`MetricQuery`] variant: the one routing source
        /// every tick reads through. A source this process lacks is a [`NoSource`]. Wrap it in a
        /// [`crate::adapters::SharedSource`] to share answers between policies.
        pub struct Sources<$($param = NoSource),*> {
            $(
                #[doc = concat!("Answers [`MetricQuery::", stringify!($variant), "`].")]
                pub $router: $param,
            )*
        }

        impl<$($param: MetricSource),*> MetricSource for Sources<$($param),*> {
            async fn fetch(&self, query: &MetricQuery, after: Ts, until: Ts) -> Result<Series, AdapterError> {
                match query {
                    $(MetricQuery::$variant(_) => self.$router.fetch(query, after, until).await,)*
                }
            }
        }
    };
}

// The registered metric sources. A new source: its file (spec type, `SourceKind` impl, resolved
// query) and one line here.
metric_sources! {
    /// The Cloud Monitoring query that returns exactly one time series. Set this or `kubernetes`.
    query: Monitoring(MonitoringSpec) by monitoring: Mon,
    /// A number Kubernetes knows, read through a watch (no polling) in the policy's namespace:
    /// a workload's replicas, a count of Pods, or a number at a path of an object. Set this or
    /// `query`. Usually a `total` metric, e.g. one node per 8 subscriber pods.
    #[x_kube(validation = Rule::new("[has(self.replicas), has(self.pods), has(self.field)].filter(x, x).size() == 1").message("set exactly one of kubernetes.replicas, kubernetes.pods or kubernetes.field"))]
    kubernetes: Kubernetes(KubernetesQuery) by kubernetes: Kube,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_of_rule_and_its_messages_list_every_source() {
        assert_eq!(MetricSourceSpec::one_of_rule(), "[has(self.query), has(self.kubernetes)].filter(x, x).size() == 1");
        assert_eq!(MetricSourceSpec::one_of_message(), "set exactly one of query (Cloud Monitoring) or kubernetes");
        assert_eq!(one_of(&["a", "b", "c"], " or "), "a, b or c");
        assert_eq!(one_of(&["a"], " or "), "a");
    }
}
