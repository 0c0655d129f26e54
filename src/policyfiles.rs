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
//! `ebbflow status --policies`). [`DirWatch`] follows the directory while standalone mode runs:
//! added, changed and removed files, with the last good version of a broken file kept running.

use std::collections::{BTreeMap, BTreeSet};
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

/// Largest policy file read: a policy is a few kilobytes; anything near this is not one (a
/// `x.yaml` symlinked to `/dev/zero` was read until memory ran out).
pub const MAX_POLICY_FILE: u64 = 1 << 20;

/// The text of the policy file `path`: only a regular file (a FIFO named `x.yaml` would block the
/// reader for good) of at most [`MAX_POLICY_FILE`] bytes, read no further than that.
pub fn read_policy_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let m = std::fs::metadata(path)?;
    if !m.is_file() {
        return Err(std::io::Error::other("not a regular file; policy files are read only if they are"));
    }
    if m.len() > MAX_POLICY_FILE {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than a policy file may have ({MAX_POLICY_FILE})",
            m.len()
        )));
    }
    let mut text = String::new();
    std::fs::File::open(path)?.take(MAX_POLICY_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_POLICY_FILE {
        return Err(std::io::Error::other(format!("more than a policy file may have ({MAX_POLICY_FILE} bytes)")));
    }
    Ok(text)
}

/// [`load_dir`], also naming the files that were skipped because they did not parse.
pub fn load_dir_all(dir: &Path) -> Result<PolicyDir, DirError> {
    let mut loaded: Vec<(String, ScalePolicy)> = Vec::new();
    let mut unreadable = Vec::new();
    for f in policy_paths(dir)? {
        let text = read_policy_text(&f).map_err(|e| DirError::io(&f, e))?;
        let path = f.display().to_string();
        match parse_file(&path, &text) {
            Ok(sp) => loaded.push((path, sp)),
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

/// The `*.yaml` / `*.yml` files in `dir`, sorted.
fn policy_paths(dir: &Path) -> Result<Vec<PathBuf>, DirError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DirError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// One policy file's text as standalone mode reads it: a namespace it leaves out is
/// [`DEFAULT_NAMESPACE`], and the generation starts at 1 (the store carries it on).
fn parse_file(path: &str, text: &str) -> Result<ScalePolicy, crate::crd::LoadError> {
    let mut sp = crate::crd::parse_policy(path, text)?;
    if sp.metadata.namespace.is_none() {
        sp.metadata.namespace = Some(DEFAULT_NAMESPACE.into());
    }
    sp.metadata.generation = Some(1);
    Ok(sp)
}

/// `namespace/name` of a policy read by [`parse_file`] (the controller's key).
fn key_of(sp: &ScalePolicy) -> String {
    format!(
        "{}/{}",
        sp.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
        sp.metadata.name.as_deref().unwrap_or_default()
    )
}

/// What a file's metadata says about its version: any field that moves means the file may
/// have changed and is read again. Length and modification time are the brief check; the inode
/// and the change time also catch a file replaced by rename (editors, `ebbflow override`) or
/// rewritten to the same length within the modification time's resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    identity: (u64, i64, i64),
}

impl Stamp {
    /// The stamp of the file `path` names (symlinks followed: a ConfigMap mount swaps them).
    fn of(path: &Path) -> std::io::Result<Stamp> {
        let m = std::fs::metadata(path)?;
        Ok(Stamp { modified: m.modified().ok(), len: m.len(), identity: identity(&m) })
    }

    /// Whether `next` is this file under another name: the same inode, length and modification
    /// time (a rename changes the change time). Never where inodes are not known.
    fn renamed_to(&self, next: &Stamp) -> bool {
        self.identity.0 != 0
            && self.identity.0 == next.identity.0
            && self.len == next.len
            && self.modified == next.modified
    }
}

#[cfg(unix)]
fn identity(m: &std::fs::Metadata) -> (u64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (m.ino(), m.ctime(), m.ctime_nsec())
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> (u64, i64, i64) {
    (0, 0, 0)
}

/// A file as last read: its stamp, and the policy it defines or why it defines none.
#[derive(Debug)]
struct Seen {
    stamp: Stamp,
    parsed: Result<ScalePolicy, String>,
}

/// The file at `path` (stamped `stamp` just before) read and parsed; `None` when it changed or
/// vanished while it was read (an editor still writing it): the next scan reads it again.
fn read_settled(path: &Path, stamp: Stamp) -> Option<Result<ScalePolicy, String>> {
    let name = path.display().to_string();
    let text = match read_policy_text(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("{name}: cannot read: {e}"))),
    };
    if !Stamp::of(path).is_ok_and(|now| now == stamp) {
        return None;
    }
    Some(parse_file(&name, &text).map_err(|e| e.to_string()))
}

/// What a directory of policy files asks standalone mode to run, from [`DirWatch::resolve`].
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Every policy to run, by `namespace/name`: the files' versions, or the last good version
    /// of a policy whose file is broken.
    pub policies: BTreeMap<String, ScalePolicy>,
    /// For a policy in [`Resolved::policies`] whose file is broken (does not parse, does not
    /// validate, or has a duplicate elsewhere): what is wrong, naming the files and the fix.
    pub problems: BTreeMap<String, String>,
    /// Files that run nothing (they do not parse and define no running policy, or duplicate a
    /// policy no file owns yet), by path, with why.
    pub refused: BTreeMap<String, String>,
}

impl Resolved {
    /// Whether some file could not be used: the saved state of a policy that is not loaded may
    /// then belong to it, and is kept.
    pub fn unreadable(&self) -> bool {
        !self.problems.is_empty() || !self.refused.is_empty()
    }
}

/// Follows a directory of policy files while standalone mode runs (polling: no inotify crate,
/// and the same on every platform and filesystem, network mounts included).
///
/// [`DirWatch::scan`] notices added, changed and removed files from their metadata, reading
/// only those that changed; [`DirWatch::resolve`] turns the files into the policies to run.
/// Each running policy remembers the file it came from, so that a file that breaks keeps its
/// last good version running, and a second file with the same name does not take it over.
#[derive(Debug)]
pub struct DirWatch {
    dir: PathBuf,
    files: BTreeMap<PathBuf, Seen>,
    /// The file each running policy came from, by key.
    owners: BTreeMap<String, PathBuf>,
    /// The problems of refused files as last logged, so each is logged once per change.
    logged: BTreeMap<String, String>,
    scanned: bool,
    /// Files whose new stamp was seen once and not read yet, with that stamp.
    pending: BTreeMap<PathBuf, Stamp>,
}

impl DirWatch {
    /// A watch on `dir` that has not looked yet: the first [`DirWatch::scan`] reads every file.
    pub fn new(dir: &Path) -> DirWatch {
        DirWatch {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            owners: BTreeMap::new(),
            logged: BTreeMap::new(),
            scanned: false,
            pending: BTreeMap::new(),
        }
    }

    /// Look at the directory: whether any policy file was added, changed or removed since the
    /// last scan (always true for the first). After the first scan, a new or changed file is
    /// read only once two looks in a row found it the same (size, time, inode): an editor that
    /// writes a file in several calls can leave a prefix that parses and validates (a policy cut
    /// before its `mode: DryRun` line would enforce), and that must never run. A file that
    /// changes while it is read counts from the next scan too. A renamed file (the same inode,
    /// size and time under a new name) keeps its reading. Fails only when the directory cannot
    /// be listed; the files then count as they were.
    pub fn scan(&mut self) -> Result<bool, DirError> {
        let paths = policy_paths(&self.dir)?;
        let first = !self.scanned;
        let mut changed = first;
        self.scanned = true;
        // Files gone from the listing, by stamp: a new name with one of these stamps is a rename.
        let listed: BTreeSet<&PathBuf> = paths.iter().collect();
        let mut gone: Vec<(PathBuf, Stamp)> =
            self.files.iter().filter(|(p, _)| !listed.contains(p)).map(|(p, seen)| (p.clone(), seen.stamp)).collect();
        let mut pending = BTreeMap::new();
        let mut next = BTreeMap::new();
        for path in paths {
            let stamp = match Stamp::of(&path) {
                Ok(s) => s,
                // Gone since the listing, or a dangling symlink: not a policy file any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                // Anything else may be passing: the file counts as it was.
                Err(_) => {
                    if let Some(old) = self.files.remove(&path) {
                        next.insert(path, old);
                    }
                    continue;
                }
            };
            match self.files.remove(&path) {
                Some(old) if old.stamp == stamp => {
                    next.insert(path, old);
                }
                old => {
                    if let Some(i) = gone.iter().position(|(_, s)| s.renamed_to(&stamp))
                        && let Some(seen) = self.files.remove(&gone.swap_remove(i).0)
                    {
                        next.insert(path, seen);
                        changed = true;
                        continue;
                    }
                    let settled = first || self.pending.get(&path) == Some(&stamp);
                    match settled.then(|| read_settled(&path, stamp)).flatten() {
                        Some(parsed) => {
                            next.insert(path, Seen { stamp, parsed });
                            changed = true;
                        }
                        None => {
                            pending.insert(path.clone(), stamp);
                            if let Some(old) = old {
                                next.insert(path, old);
                            }
                        }
                    }
                }
            }
        }
        self.pending = pending;
        // What is left was not listed: removed.
        changed |= !self.files.is_empty();
        self.files = next;
        Ok(changed)
    }

    /// The policies to run, given the ones `running` now (by key), from the files as last
    /// scanned:
    ///
    /// - a running policy takes its file's new version; if that version does not parse, breaks
    ///   a name rule or does not validate while the running one does, the running version stays,
    ///   with the problem;
    /// - a second file defining a running policy is refused (the problem is the running
    ///   policy's): it never replaces the policy it duplicates;
    /// - a running policy whose file was removed (or now defines another policy) stops, unless
    ///   exactly one other file defines it, which then takes it over (a renamed file);
    /// - a policy defined by exactly one file that no running policy owns starts; one defined
    ///   by several such files starts from none of them.
    ///
    /// Refused files are logged once per change.
    pub fn resolve(&mut self, running: &BTreeMap<String, ScalePolicy>) -> Resolved {
        // Each file's verdict: the key and policy it defines, or why it defines none.
        let mut verdicts: BTreeMap<&Path, Result<(String, &ScalePolicy), String>> = BTreeMap::new();
        let mut candidates: BTreeMap<String, Vec<(&Path, &ScalePolicy)>> = BTreeMap::new();
        for (path, seen) in &self.files {
            let name = path.display().to_string();
            let verdict = match &seen.parsed {
                Err(why) => Err(why.clone()),
                Ok(sp) => {
                    let found = problems([(name.as_str(), sp)]);
                    if found.is_empty() {
                        Ok((key_of(sp), sp))
                    } else {
                        Err(found.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
                    }
                }
            };
            if let Ok((k, sp)) = &verdict {
                candidates.entry(k.clone()).or_default().push((path.as_path(), *sp));
            }
            verdicts.insert(path.as_path(), verdict);
        }

        let mut out = Resolved::default();
        let mut owners: BTreeMap<String, PathBuf> = BTreeMap::new();
        let keys: BTreeSet<&String> = running.keys().chain(candidates.keys()).collect();
        for k in keys {
            let found: &[(&Path, &ScalePolicy)] = candidates.get(k).map(Vec::as_slice).unwrap_or_default();
            let Some(current) = running.get(k) else {
                match found {
                    [] => {}
                    [(path, sp)] => take(&mut out, &mut owners, k, None, sp, path, &[]),
                    [(first, _), rest @ ..] => {
                        for (other, _) in rest {
                            let why = format!(
                                "{}; neither file runs until one of them is renamed or removed",
                                duplicate(k, first, other)
                            );
                            out.refused.insert(first.display().to_string(), why.clone());
                            out.refused.insert(other.display().to_string(), why);
                        }
                    }
                }
                continue;
            };
            let owner = self.owners.get(k).and_then(|o| verdicts.get_key_value(o.as_path()));
            match owner {
                Some((o, Ok((defined, sp)))) if defined == k => {
                    let others: Vec<&Path> = found.iter().map(|(p, _)| *p).filter(|p| p != o).collect();
                    take(&mut out, &mut owners, k, Some(current), sp, o, &others);
                }
                Some((o, Err(why))) => {
                    let mut problem =
                        vec![format!("{why}; the last good version keeps running until the file is fixed")];
                    for (other, _) in found {
                        problem.push(format!(
                            "{}; {} is ignored (and a restart refuses the directory until one is removed)",
                            duplicate(k, o, other),
                            other.display()
                        ));
                    }
                    out.policies.insert(k.clone(), current.clone());
                    out.problems.insert(k.clone(), problem.join("; "));
                    owners.insert(k.clone(), o.to_path_buf());
                }
                // No file known to define it (the first scan), its file was removed, or that
                // file now defines another policy.
                _ => match found {
                    [] => {}
                    [(path, sp)] => take(&mut out, &mut owners, k, Some(current), sp, path, &[]),
                    [(first, _), rest @ ..] => {
                        let problem: Vec<String> = rest
                            .iter()
                            .map(|(other, _)| {
                                format!(
                                    "{}; the running version stays until only one file defines it",
                                    duplicate(k, first, other)
                                )
                            })
                            .collect();
                        out.policies.insert(k.clone(), current.clone());
                        out.problems.insert(k.clone(), problem.join("; "));
                    }
                },
            }
        }
        for (path, verdict) in &verdicts {
            if let Err(why) = verdict
                && !owners.values().any(|o| o == path)
            {
                out.refused
                    .insert(path.display().to_string(), format!("{why}; the file runs nothing until it is fixed"));
            }
        }
        for (file, why) in &out.refused {
            if self.logged.get(file) != Some(why) {
                tracing::error!(file = %file, "policy file refused: {why}");
            }
        }
        self.logged = out.refused.clone();
        self.owners = owners;
        out
    }
}

/// The message for two files defining the policy `k`.
fn duplicate(k: &str, first: &Path, second: &Path) -> String {
    PolicyFileError::Duplicate {
        key: k.to_string(),
        first: first.display().to_string(),
        second: second.display().to_string(),
    }
    .to_string()
}

/// Run `k` from the file `from`, which defines it as `sp` (`current` is the running version, if
/// any), and report the files in `ignored`, which define it too. A new version that does not
/// validate while the running one does is not taken.
fn take(
    out: &mut Resolved,
    owners: &mut BTreeMap<String, PathBuf>,
    k: &str,
    current: Option<&ScalePolicy>,
    sp: &ScalePolicy,
    from: &Path,
    ignored: &[&Path],
) {
    let mut problem = Vec::new();
    let chosen = match current {
        Some(cur) if cur.spec != sp.spec => {
            match (crate::spec::policy_from_spec(&sp.spec), crate::spec::policy_from_spec(&cur.spec)) {
                (Err(e), Ok(_)) => {
                    problem.push(format!(
                        "{}: {e}; the last good version keeps running until the file is fixed",
                        from.display()
                    ));
                    cur
                }
                _ => sp,
            }
        }
        _ => sp,
    };
    for other in ignored {
        problem.push(format!(
            "{}; {} is ignored (and a restart refuses the directory until one is removed)",
            duplicate(k, from, other),
            other.display()
        ));
    }
    out.policies.insert(k.to_string(), chosen.clone());
    if !problem.is_empty() {
        out.problems.insert(k.to_string(), problem.join("; "));
    }
    owners.insert(k.to_string(), from.to_path_buf());
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
    (!crate::known::is_label(s)).then_some(LABEL_RULE)
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
/// A file that exists keeps its permissions (a policy file edited by `ebbflow override` must not
/// become readable by others because the replacement was created with the default mode); a new
/// file gets the mode `File::create` would give it. `path` itself is replaced: a caller that
/// means the target of a symlink resolves it first.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// [`write_atomically`] with the content written by `write` into the new file (so a large file
/// need not be built in memory first); the file is synced and renamed over `path` after `write`
/// returns.
pub fn write_atomically_with(
    path: &std::path::Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let existing = std::fs::metadata(path).ok().map(|m| m.permissions());
    // Beside the file (a rename does not cross file systems), named after it, and never with the
    // file's own extension, so that a directory scan for `*.yaml` skips it.
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    if existing.is_none() {
        new_file_mode(&mut builder);
    }
    // Removed on every early return: a failed write leaves nothing behind.
    let mut tmp = builder.tempfile_in(dir)?;
    if let Some(permissions) = existing {
        // Best effort: the content matters more than the mode. Set on the open file, so the
        // umask does not narrow it.
        let _ = tmp.as_file().set_permissions(permissions);
    }
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Temporary files are private (0600) by default; a new state or policy file is created as
/// `File::create` would (0666 less the umask).
#[cfg(unix)]
fn new_file_mode(builder: &mut tempfile::Builder<'_, '_>) {
    use std::os::unix::fs::PermissionsExt;
    builder.permissions(std::fs::Permissions::from_mode(0o666));
}

#[cfg(not(unix))]
fn new_file_mode(_: &mut tempfile::Builder<'_, '_>) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO named like a policy file is not opened (it would block the reader for good) and a
    /// file past the size bound is not read into memory; both are refused naming why.
    #[cfg(unix)]
    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = fresh_dir("policyfile-kinds");
        let fifo = dir.join("fifo.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let e = read_policy_text(&fifo).expect_err("a FIFO");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let big = dir.join("big.yaml");
        std::fs::write(&big, vec![b'#'; (MAX_POLICY_FILE + 1) as usize]).expect("write");
        let e = read_policy_text(&big).expect_err("too large");
        assert!(e.to_string().contains("more than a policy file may have"), "{e}");
        let mut watch = DirWatch::new(&dir);
        assert!(watch.scan().expect("scan"), "the first scan counts as a change");
        let _ = std::fs::remove_dir_all(&dir);
    }

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

    /// A policy file as a person writes it, with `name` and `maxSize`.
    /// An empty directory of this process's own under the system's temporary one.
    fn fresh_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ebbflow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    fn yaml(name: &str, max: u32) -> String {
        format!(
            "apiVersion: ebbflow.dev/v1alpha1\nkind: ScalePolicy\nmetadata:\n  name: {name}\nspec:\n  target:\n    \
             bigtableCluster: {{project: p1, instance: i1, cluster: c1}}\n  minSize: 1\n  maxSize: {max}\n  metrics:\n    \
             - name: cpu\n      target: 0.5\n      query:\n        filter: x\n"
        )
    }

    /// What [`DirWatch`] makes of renames and new duplicates: a file renamed keeps its policy
    /// running (no stop and start); two new files with one name start neither and both are
    /// named; a file that now names another policy stops the old one and starts the new one.
    #[test]
    fn dir_watch_follows_renames_and_refuses_new_duplicates() {
        let dir = fresh_dir("dirwatch");
        std::fs::write(dir.join("a.yaml"), yaml("orders", 3)).expect("write");
        let mut watch = DirWatch::new(&dir);
        assert!(watch.scan().expect("scan"), "the first scan reads everything");
        let running = watch.resolve(&BTreeMap::new()).policies;
        assert_eq!(running.keys().collect::<Vec<_>>(), ["default/orders"]);
        assert!(!watch.scan().expect("scan"), "nothing changed");

        std::fs::rename(dir.join("a.yaml"), dir.join("b.yaml")).expect("rename");
        assert!(watch.scan().expect("scan"), "a rename is seen at once");
        let r = watch.resolve(&running);
        assert_eq!(r.policies.keys().collect::<Vec<_>>(), ["default/orders"]);
        assert!(r.problems.is_empty() && r.refused.is_empty(), "{r:?}");

        std::fs::write(dir.join("c.yaml"), yaml("payments", 3)).expect("write");
        std::fs::write(dir.join("d.yaml"), yaml("payments", 4)).expect("write");
        assert!(!watch.scan().expect("scan"), "new files wait for a second look");
        assert!(watch.scan().expect("scan"));
        let r = watch.resolve(&running);
        assert!(!r.policies.contains_key("default/payments"), "{r:?}");
        let refused: Vec<&String> = r.refused.keys().collect();
        assert!(refused.len() == 2 && refused[0].ends_with("c.yaml") && refused[1].ends_with("d.yaml"), "{r:?}");
        assert!(r.refused.values().all(|why| why.contains("default/payments") && why.contains("unique")), "{r:?}");
        assert!(r.unreadable());

        std::fs::remove_file(dir.join("d.yaml")).expect("rm");
        std::fs::write(dir.join("b.yaml"), yaml("orders-v2", 3)).expect("write");
        assert!(watch.scan().expect("scan"), "a removal is seen at once");
        let r = watch.resolve(&running);
        assert_eq!(
            r.policies.keys().collect::<Vec<_>>(),
            ["default/orders", "default/payments"],
            "b.yaml not read yet"
        );
        assert!(watch.scan().expect("scan"));
        let r = watch.resolve(&running);
        assert_eq!(r.policies.keys().collect::<Vec<_>>(), ["default/orders-v2", "default/payments"]);
        assert!(!r.unreadable(), "{r:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file is applied only after two looks found it the same: a version seen once (an editor
    /// half way through writing it, which may parse and validate) never runs.
    #[test]
    fn dir_watch_applies_a_file_only_once_it_has_settled() {
        let dir = fresh_dir("dirwatch-settle");
        std::fs::write(dir.join("a.yaml"), yaml("orders", 3)).expect("write");
        let mut watch = DirWatch::new(&dir);
        assert!(watch.scan().expect("scan"), "the first scan reads everything at once");
        let running = watch.resolve(&BTreeMap::new()).policies;
        let max = |r: &Resolved| r.policies.get("default/orders").map(|sp| sp.spec.max_size);

        // Half written (here: a first version), then finished before the next look.
        std::fs::write(dir.join("a.yaml"), yaml("orders", 40)).expect("write");
        assert!(!watch.scan().expect("scan"), "seen once: not read");
        assert_eq!(max(&watch.resolve(&running)), Some(3), "the running version stays");
        std::fs::write(dir.join("a.yaml"), yaml("orders", 7) + "# done\n").expect("write");
        assert!(!watch.scan().expect("scan"), "changed since the last look: not read");
        assert!(watch.scan().expect("scan"), "the same at two looks: read");
        assert_eq!(max(&watch.resolve(&running)), Some(7), "the finished version runs; 40 never did");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A replaced file keeps its mode, neither widened nor narrowed to a temporary file's 0600; a
    /// new file gets the mode `File::create` gives; nothing is left beside them.
    #[cfg(unix)]
    #[test]
    fn write_atomically_keeps_the_mode_and_leaves_nothing_behind() {
        use std::os::unix::fs::PermissionsExt;
        let dir = fresh_dir("atomic");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        for (file, kept) in [("private.yaml", 0o600), ("shared.yaml", 0o664)] {
            let path = dir.join(file);
            std::fs::write(&path, "old").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(kept)).expect("chmod");
            write_atomically(&path, b"new").expect("replace");
            assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
            assert_eq!(mode(&path), kept, "{file}");
        }
        let created = dir.join("state.json");
        write_atomically(&created, b"{}").expect("create");
        let reference = dir.join("reference");
        std::fs::File::create(&reference).expect("create");
        assert_eq!(mode(&created), mode(&reference), "as File::create makes it");
        std::fs::remove_file(&reference).expect("rm");
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["private.yaml", "shared.yaml", "state.json"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
