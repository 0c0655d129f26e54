//! Checks across a set of ScalePolicy files that no single file can make on its own: every
//! policy's `metadata.name` / `metadata.namespace` must be a valid Kubernetes name, and no two
//! files may define the same `namespace/name`.
//!
//! The API server enforces both for objects; files loaded in standalone mode (and checked by
//! `ebbflow validate`) have no API server in front of them. Without these checks a second file
//! with the same name silently replaced the first in the state file's map, and a name with a `/`
//! produced a key that could not be told apart from another policy's.
//!
//! [`load_dir`] loads a directory of policy files with these checks (standalone mode, and
//! `ebbflow status --policies`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::api::ScalePolicy;

/// The namespace a policy file gets when it names none (standalone mode's rule).
pub const DEFAULT_NAMESPACE: &str = "default";

/// Load every `*.yaml` / `*.yml` ScalePolicy in `dir`. Files that do not parse are reported and
/// skipped; specs that parse but break a rule are kept, so they get an InvalidSpec status.
///
/// Two files with the same `namespace/name`, or a name Kubernetes would refuse, fail the load
/// ([`DirError::PolicyFiles`], naming the files): keeping one of two files silently is how
/// a policy got lost.
pub fn load_dir(dir: &Path) -> Result<Vec<ScalePolicy>, DirError> {
    load_dir_all(dir).map(|d| d.policies)
}

/// A directory of policy files as [`load_dir_all`] found it.
#[derive(Debug, Clone, Default)]
pub struct PolicyDir {
    /// The policies that parsed.
    pub policies: Vec<ScalePolicy>,
    /// Files that did not parse, with why: the policies they define are unknown, so their saved
    /// state must be kept until the files are fixed.
    pub unreadable: Vec<String>,
}

/// [`load_dir`], also naming the files that were skipped because they did not parse.
pub fn load_dir_all(dir: &Path) -> Result<PolicyDir, DirError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DirError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut loaded: Vec<(String, ScalePolicy)> = Vec::new();
    let mut unreadable = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| DirError::io(&f, e))?;
        let path = f.display().to_string();
        match crate::crd::parse_policy(&path, &text) {
            Ok(mut sp) => {
                if sp.metadata.namespace.is_none() {
                    sp.metadata.namespace = Some(DEFAULT_NAMESPACE.into());
                }
                sp.metadata.generation = Some(1);
                loaded.push((path, sp));
            }
            Err(e) => {
                tracing::error!(error = %e, "skipping policy file: it does not parse (its saved state is kept)");
                unreadable.push(e.to_string());
            }
        }
    }
    let problems = problems(loaded.iter().map(|(path, sp)| (path.as_str(), sp)));
    if !problems.is_empty() {
        return Err(DirError::PolicyFiles(problems));
    }
    if loaded.is_empty() {
        return Err(DirError::NoPolicies(dir.display().to_string()));
    }
    Ok(PolicyDir { policies: loaded.into_iter().map(|(_, sp)| sp).collect(), unreadable })
}

/// Why a directory of policy files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// The directory or a file in it could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The directory or file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// No policy could be loaded.
    #[error("no ScalePolicy files (*.yaml, *.yml) in {0}")]
    NoPolicies(String),
    /// Policy files that cannot be loaded together (duplicate or invalid names).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    PolicyFiles(Vec<PolicyFileError>),
}

impl DirError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        DirError::Io { path: path.display().to_string(), source }
    }
}

/// A problem with a set of policy files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyFileError {
    /// Two files define the same `namespace/name`; one of them would be silently dropped.
    #[error(
        "{first} and {second} both define ScalePolicy {key}: `metadata.namespace`/`metadata.name` must be unique (rename one of them or remove it)"
    )]
    Duplicate {
        /// `namespace/name`.
        key: String,
        /// The file that defined it first (in the order given).
        first: String,
        /// The file that defined it again.
        second: String,
    },
    /// A name or namespace Kubernetes would refuse.
    #[error("{path}: {field}: {value:?} is not {rule}")]
    InvalidName {
        /// The file.
        path: String,
        /// `metadata.name` or `metadata.namespace`.
        field: &'static str,
        /// The value found.
        value: String,
        /// The rule it breaks, with what is allowed.
        rule: String,
    },
}

impl PolicyFileError {
    /// Whether this problem is about the file `path`.
    pub fn concerns(&self, path: &str) -> bool {
        match self {
            PolicyFileError::Duplicate { first, second, .. } => first == path || second == path,
            PolicyFileError::InvalidName { path: p, .. } => p == path,
        }
    }
}

/// Every problem in `files` (path, parsed policy): invalid names first, file by file, then
/// duplicates, each naming both files. A policy without a namespace counts as `default`.
pub fn problems<'a>(files: impl IntoIterator<Item = (&'a str, &'a ScalePolicy)>) -> Vec<PolicyFileError> {
    let mut invalid = Vec::new();
    let mut duplicates = Vec::new();
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (path, sp) in files {
        let name = sp.metadata.name.as_deref().unwrap_or("");
        let namespace = sp.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let mut ok = true;
        if let Some(rule) = dns_subdomain_problem(name) {
            ok = false;
            invalid.push(PolicyFileError::InvalidName {
                path: path.to_string(),
                field: "metadata.name",
                value: name.to_string(),
                rule: format!("a valid name: {rule}"),
            });
        }
        if let Some(rule) = dns_label_problem(namespace) {
            ok = false;
            invalid.push(PolicyFileError::InvalidName {
                path: path.to_string(),
                field: "metadata.namespace",
                value: namespace.to_string(),
                rule: format!("a valid namespace: {rule}"),
            });
        }
        if !ok {
            // Its key means nothing; a duplicate report on it would only add noise.
            continue;
        }
        let key = format!("{namespace}/{name}");
        match seen.get(&key) {
            Some(first) => {
                duplicates.push(PolicyFileError::Duplicate { key, first: first.to_string(), second: path.to_string() })
            }
            None => {
                seen.insert(key, path);
            }
        }
    }
    invalid.extend(duplicates);
    invalid
}

/// [`problems`] of the files at `paths` that load (`ebbflow validate`; files that do not load
/// are left to the caller's per-file report).
pub fn check_paths(paths: &[std::path::PathBuf]) -> Vec<PolicyFileError> {
    let loaded: Vec<(String, ScalePolicy)> = paths
        .iter()
        .filter_map(|p| crate::crd::load_policy(p).ok().map(|(sp, _)| (p.display().to_string(), sp)))
        .collect();
    problems(loaded.iter().map(|(path, sp)| (path.as_str(), sp)))
}

const SUBDOMAIN_RULE: &str = "an RFC 1123 DNS subdomain (at most 253 characters: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit), e.g. \"orders-bigtable\"";
const LABEL_RULE: &str = "an RFC 1123 DNS label (at most 63 characters: lowercase letters, digits and '-', starting and ending with a letter or digit), e.g. \"team-a\"";

/// Why `s` is not an RFC 1123 DNS subdomain (Kubernetes' rule for most object names), if it is
/// not.
pub fn dns_subdomain_problem(s: &str) -> Option<&'static str> {
    let valid = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            // Each dot-separated part is label-shaped (the length limit is the whole name's).
            !part.is_empty() && label_chars_ok(part)
        });
    (!valid).then_some(SUBDOMAIN_RULE)
}

/// Why `s` is not an RFC 1123 DNS label (Kubernetes' rule for namespace names), if it is not.
pub fn dns_label_problem(s: &str) -> Option<&'static str> {
    let valid = !s.is_empty() && s.len() <= 63 && label_chars_ok(s);
    (!valid).then_some(LABEL_RULE)
}

fn label_chars_ok(s: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => alnum(first) && alnum(last) && bytes.iter().all(|&c| alnum(c) || c == b'-'),
        _ => false,
    }
}

/// Replace `path` with `bytes` so that a reader (or a crash) sees the old or the new content.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    // Unique per call: an abandoned write must not share its temporary file with the next one.
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(".{name}.tmp.{}.{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(ns: Option<&str>, name: &str) -> ScalePolicy {
        let mut v = serde_json::json!({
            "apiVersion": "ebbflow.dev/v1alpha1", "kind": "ScalePolicy",
            "metadata": {"name": name},
            "spec": {
                "target": {"bigtableCluster": {"project": "p1", "instance": "i1", "cluster": "c1"}},
                "minSize": 1, "maxSize": 3,
                "metrics": [{"name": "cpu", "target": 0.5, "query": {"filter": "x"}}]
            }
        });
        if let Some(ns) = ns {
            v["metadata"]["namespace"] = ns.into();
        }
        serde_json::from_value(v).expect("policy")
    }

    /// Kubernetes' own examples of valid and invalid names.
    #[test]
    fn name_rules() {
        for ok in ["a", "orders", "orders-1", "a.b-c.d", "0abc", &"a".repeat(253)] {
            assert_eq!(dns_subdomain_problem(ok), None, "{ok}");
        }
        for bad in ["", "Orders", "team/orders", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", &"a".repeat(254)] {
            assert!(dns_subdomain_problem(bad).is_some(), "{bad:?} accepted");
        }
        for ok in ["default", "team-a", "0", &"a".repeat(63)] {
            assert_eq!(dns_label_problem(ok), None, "{ok}");
        }
        for bad in ["", "team.a", "Team", "a/b", "-a", &"a".repeat(64)] {
            assert!(dns_label_problem(bad).is_some(), "{bad:?} accepted");
        }
    }

    /// Duplicates name both files; a missing namespace is `default`; invalid names name the
    /// field and the rule.
    #[test]
    fn duplicates_and_invalid_names() {
        let a = sp(None, "orders");
        let b = sp(Some("default"), "orders");
        let c = sp(Some("team-a"), "orders");
        let d = sp(Some("team-a"), "team/orders");
        let e = sp(Some("Team_A"), "fine");
        let found = problems([("a.yaml", &a), ("b.yaml", &b), ("c.yaml", &c), ("d.yaml", &d), ("e.yaml", &e)]);
        assert_eq!(found.len(), 3, "{found:#?}");
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(
            text[0]
                .starts_with("d.yaml: metadata.name: \"team/orders\" is not a valid name: an RFC 1123 DNS subdomain"),
            "{}",
            text[0]
        );
        assert!(
            text[1]
                .starts_with("e.yaml: metadata.namespace: \"Team_A\" is not a valid namespace: an RFC 1123 DNS label"),
            "{}",
            text[1]
        );
        assert!(text[2].starts_with("a.yaml and b.yaml both define ScalePolicy default/orders"), "{}", text[2]);
        assert!(found[2].concerns("a.yaml") && found[2].concerns("b.yaml") && !found[2].concerns("c.yaml"));
    }
}
