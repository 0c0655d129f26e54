//! The pure edits behind `ebbflow override`, `pause` and `resume`: a policy's overrides with one
//! added or removed, the result checked as a whole policy.

use crate::api::{OverrideSpec, PauseKind, ScalePolicySpec};
use crate::core::Ts;
use crate::known::timestamp;

/// A new override to add with `ebbflow override` or `ebbflow pause`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOverride {
    /// Name; replaces an override of the same name.
    pub name: String,
    /// Who.
    pub owner: String,
    /// Why.
    pub reason: String,
    /// Until when.
    pub until: Ts,
    /// Minimum size.
    pub min_size: Option<u32>,
    /// Maximum size.
    pub max_size: Option<u32>,
    /// Pause.
    pub pause: Option<PauseKind>,
}

/// The spec's overrides with `new` added (replacing one of the same name) and expired ones
/// dropped, checked against the rest of the spec. Errors are for people and name the fix.
pub fn with_override(spec: &ScalePolicySpec, new: &NewOverride, now: Ts) -> Result<Vec<OverrideSpec>, String> {
    if new.until <= now {
        return Err(format!(
            "the expiry {} is in the past (now is {}); give a later --until or a --for duration",
            new.until.to_rfc3339(),
            now.to_rfc3339()
        ));
    }
    for (flag, v) in [("--min", new.min_size), ("--max", new.max_size)] {
        if let Some(m) = v.filter(|&m| m > spec.max_size) {
            return Err(format!(
                "{flag} {m} is above the policy's maxSize ({}); raise spec.maxSize first or ask for less",
                spec.max_size
            ));
        }
    }
    let mut list: Vec<OverrideSpec> = spec
        .overrides
        .iter()
        .filter(|o| o.name != new.name && timestamp(&o.until).is_ok_and(|u| u > now))
        .cloned()
        .collect();
    list.push(OverrideSpec {
        name: new.name.clone(),
        owner: new.owner.clone(),
        reason: new.reason.clone(),
        since: Some(now.to_rfc3339()),
        until: new.until.to_rfc3339(),
        min_size: new.min_size,
        max_size: new.max_size,
        pause: new.pause,
    });
    let mut next = spec.clone();
    next.overrides = list.clone();
    if let Err(e) = crate::spec::policy_from_spec(&next) {
        return Err(format!("the policy would not be valid with this override: {e}"));
    }
    Ok(list)
}

/// The spec's overrides without `name` (all of them with `None`) and without expired ones; an
/// error when there is nothing to resume.
pub fn without_override(spec: &ScalePolicySpec, name: Option<&str>, now: Ts) -> Result<Vec<OverrideSpec>, String> {
    let live = |o: &&OverrideSpec| timestamp(&o.until).is_ok_and(|u| u > now);
    let active: Vec<&OverrideSpec> = spec.overrides.iter().filter(live).collect();
    match name {
        Some(n) if !active.iter().any(|o| o.name == n) => Err(format!(
            "no active override named \"{n}\"; active: {}",
            if active.is_empty() {
                "none".into()
            } else {
                active.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ")
            }
        )),
        None if active.is_empty() => Err("no active override to resume".into()),
        _ => Ok(active.into_iter().filter(|o| name.is_some_and(|n| o.name != n)).cloned().collect()),
    }
}

/// `text`, a ScalePolicy file in block-style YAML, with `spec.overrides` set to `overrides` and
/// nothing else changed: comments, key order and the fields left to their defaults stay as the
/// user wrote them. An empty list removes the key; a missing key is added at the end of `spec`,
/// at the indentation of its fields, its entries indented like the user's own lists.
///
/// The result is parsed again and must be the same document with only `spec.overrides`
/// different, and that equal to `overrides`. An edit that cannot be made that way (`spec:` in
/// flow style, a key written in quotes, an edit that would change anything else) is refused
/// with why; see [`refusal`] for what to tell the user. The whole file is never rewritten.
pub fn overrides_in_text(text: &str, overrides: &[OverrideSpec]) -> Result<String, String> {
    let edited = splice(text, overrides)?;
    check_splice(text, &edited, overrides)?;
    Ok(edited)
}

/// Why `file` was left as it was, and what to do instead: make `spec` block style, or write the
/// overrides by hand (given here, ready to paste).
pub fn refusal(file: &str, why: &str, overrides: &[OverrideSpec]) -> String {
    let by_hand = if overrides.is_empty() {
        "remove spec.overrides from the file by hand".to_string()
    } else {
        let list = render(overrides, 4, "\n").unwrap_or_default();
        format!("set spec.overrides in the file by hand to:\n  overrides:\n{}", list.trim_end())
    };
    format!(
        "{file} was not changed: {why}. The command edits only spec.overrides, in block-style YAML, so that the rest \
         of the file stays as written; write `spec:` with one field per line and run it again, or {by_hand}"
    )
}

/// One line of a file: where it starts, where the next one starts, and its text without the
/// line break.
struct Line<'a> {
    start: usize,
    next: usize,
    body: &'a str,
}

impl<'a> Line<'a> {
    fn indent(&self) -> usize {
        self.body.len() - self.body.trim_start_matches(' ').len()
    }

    /// Whether the line holds YAML (is neither blank nor only a comment).
    fn content(&self) -> bool {
        let t = self.body.trim_start();
        !t.is_empty() && !t.starts_with('#')
    }

    /// The line's text after its indentation.
    fn rest(&self) -> &'a str {
        let body = self.body;
        &body[self.indent()..]
    }

    /// Whether the line starts a block sequence entry.
    fn entry(&self) -> bool {
        let rest = self.rest();
        rest == "-" || rest.starts_with("- ")
    }
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let (end, next) = match text[start..].find('\n') {
            Some(i) => (start + i, start + i + 1),
            None => (text.len(), text.len()),
        };
        let raw = &text[start..end];
        out.push(Line { start, next, body: raw.strip_suffix('\r').unwrap_or(raw) });
        start = next;
    }
    out
}

/// What follows `key:` in `rest` (a line's text after its indentation), trimmed: empty when the
/// value is on the next lines. `None` when the line is not that key, unquoted.
fn after_key<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    let after = rest.strip_prefix(key)?.strip_prefix(':')?;
    if after.is_empty() || after.starts_with([' ', '\t']) { Some(after.trim()) } else { None }
}

/// Whether `rest` is `key` written in quotes, which this edit does not follow.
fn quoted_key(rest: &str, key: &str) -> bool {
    rest.starts_with(&format!("\"{key}\"")) || rest.starts_with(&format!("'{key}'"))
}

/// Whether a value after `key:` is given on the next lines (nothing, or only a comment, after it).
fn value_below(after: &str) -> bool {
    after.is_empty() || after.starts_with('#')
}

/// `overrides` as a block sequence, each line indented by `indent` spaces.
fn render(overrides: &[OverrideSpec], indent: usize, nl: &str) -> Result<String, String> {
    let yaml =
        serde_saphyr::to_string(&overrides).map_err(|e| format!("the overrides cannot be written as YAML: {e}"))?;
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for line in yaml.lines() {
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
        out.push_str(nl);
    }
    Ok(out)
}

/// The text edit of [`overrides_in_text`], before its check.
fn splice(text: &str, overrides: &[OverrideSpec]) -> Result<String, String> {
    let lines = lines(text);
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let top: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            let l = &lines[i];
            l.content() && l.indent() == 0 && (after_key(l.body, "spec").is_some() || quoted_key(l.body, "spec"))
        })
        .collect();
    let at = match top.as_slice() {
        [one] => *one,
        [] => return Err("it has no top-level `spec:` line (is it JSON, or YAML in flow style?)".into()),
        _ => return Err("it has more than one top-level `spec:` line".into()),
    };
    match after_key(lines[at].body, "spec") {
        Some(after) if value_below(after) => {}
        Some(after) if after.starts_with('{') => {
            return Err("its `spec:` is written in flow style (`spec: {...}`)".into());
        }
        _ => {
            return Err(format!(
                "its {} line is not a plain `spec:` with the fields on the lines below",
                crate::excerpt::quoted(lines[at].body.trim())
            ));
        }
    }
    // The spec's block: up to the next line at the left margin that holds YAML.
    let end = (at + 1..lines.len()).find(|&i| lines[i].content() && lines[i].indent() == 0).unwrap_or(lines.len());
    let Some(first) = (at + 1..end).find(|&i| lines[i].content()) else {
        return Err("its `spec:` has no fields below it".into());
    };
    let n = lines[first].indent();
    // A comment after the last field belongs to what follows.
    let last = (first..end).rev().find(|&i| lines[i].content()).unwrap_or(first);
    let field = |i: usize, key: &str| {
        let l = &lines[i];
        if l.content() && l.indent() == n { after_key(l.rest(), key) } else { None }
    };
    if (first..=last).any(|i| lines[i].content() && lines[i].indent() == n && quoted_key(lines[i].rest(), "overrides"))
    {
        return Err("its spec.overrides key is written in quotes".into());
    }
    let found: Vec<usize> = (first..=last).filter(|&i| field(i, "overrides").is_some()).collect();
    if found.len() > 1 {
        return Err("its spec has more than one `overrides:` key".into());
    }
    // Entries indented like the user's lists: the overrides already there, else the metrics.
    let entry_indent = |key_line: usize| -> Option<usize> {
        let next = (key_line + 1..end).find(|&i| lines[i].content())?;
        let l = &lines[next];
        if l.indent() >= n && l.entry() { Some(l.indent()) } else { None }
    };
    let metrics = (first..=last).find(|&i| field(i, "metrics").is_some_and(value_below));
    let indent =
        found.first().and_then(|&k| entry_indent(k)).or_else(|| metrics.and_then(entry_indent)).unwrap_or(n + 2);
    let rendered = if overrides.is_empty() { String::new() } else { render(overrides, indent, nl)? };
    let pad = " ".repeat(n);

    let Some(&k) = found.first() else {
        if overrides.is_empty() {
            return Ok(text.to_string());
        }
        let after = lines[last].next;
        let mut out = String::with_capacity(text.len() + rendered.len() + 32);
        out.push_str(&text[..after]);
        if after == text.len() && !text.ends_with('\n') {
            out.push_str(nl);
        }
        out.push_str(&format!("{pad}overrides:{nl}{rendered}"));
        out.push_str(&text[after..]);
        return Ok(out);
    };
    let after = field(k, "overrides").unwrap_or_default();
    let below = value_below(after);
    // The value: lines indented deeper, and (for a value below the key) entries at the key's
    // own indentation, which YAML allows for a list; blank and comment lines in between go too.
    // Whatever this misjudges, the check after it refuses.
    let mut value_end = k;
    for (i, l) in lines.iter().enumerate().take(end).skip(k + 1) {
        if !l.content() {
            continue;
        }
        // A flow list over several lines may close at the key's indentation.
        let closes = !below && l.indent() == n && l.rest().starts_with([']', '}']);
        if l.indent() > n || (below && l.indent() == n && l.entry()) || closes {
            value_end = i;
        } else {
            break;
        }
    }
    let replacement = match (overrides.is_empty(), after.starts_with('#')) {
        (true, _) => String::new(),
        // The comment on the key's line stays.
        (false, true) => format!("{}{nl}{rendered}", lines[k].body),
        (false, false) => format!("{pad}overrides:{nl}{rendered}"),
    };
    Ok(format!("{}{replacement}{}", &text[..lines[k].start], &text[lines[value_end].next..]))
}

/// The edit changed `spec.overrides` to `overrides` and nothing else.
fn check_splice(before: &str, after: &str, overrides: &[OverrideSpec]) -> Result<(), String> {
    let parse = |t: &str| serde_saphyr::from_str::<serde_json::Value>(t);
    let take = |doc: &mut serde_json::Value| {
        doc.get_mut("spec").and_then(|s| s.as_object_mut()).and_then(|s| s.remove("overrides"))
    };
    let mut was = parse(before).map_err(|e| format!("it does not parse as YAML ({e})"))?;
    let mut now = parse(after).map_err(|e| format!("the edited text would not parse ({e})"))?;
    take(&mut was);
    let got = take(&mut now);
    if was != now {
        return Err("editing the text would change more than spec.overrides".into());
    }
    let got: Vec<OverrideSpec> = match got {
        None => Vec::new(),
        Some(v) => serde_json::from_value(v).map_err(|e| format!("the edited overrides would not read back ({e})"))?,
    };
    if got != overrides {
        return Err("the edited overrides would not read back as intended".into());
    }
    Ok(())
}
