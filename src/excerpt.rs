//! Short, printable excerpts of user input for error messages.
//!
//! A bad value in a user's file may be a 2 GB line or carry terminal escape sequences; the
//! message about it must still fit on a screen and print safely. Every parse error of a user file
//! (trace, policy, scenario, state file) quotes input through [`quoted`], and messages written by
//! libraries that quote input whole pass through [`shorten_quotes`].

/// Longest excerpt of user input an error message quotes, in characters.
pub const MAX_CHARS: usize = 80;

/// Longest message taken from a library (serde, the YAML parser), in characters.
pub const MAX_MESSAGE: usize = 240;

/// `text` in double quotes, cut to [`MAX_CHARS`] characters with `…` and its full size in bytes
/// when longer; control characters are escaped so input cannot drive the terminal.
pub fn quoted(text: &str) -> String {
    let (cut, long) = cut(text, MAX_CHARS);
    if long { format!("\"{cut}…\" ({} bytes)", text.len()) } else { format!("\"{cut}\"") }
}

/// `text` unquoted, cut like [`quoted`]; for names that appear in field paths.
pub fn excerpt(text: &str) -> String {
    let (cut, long) = cut(text, MAX_CHARS);
    if long { format!("{cut}…") } else { cut }
}

/// The first `max` characters of `text` with control characters escaped, and whether anything
/// was left out.
fn cut(text: &str, max: usize) -> (String, bool) {
    let mut out = String::new();
    let mut chars = text.chars();
    for c in chars.by_ref().take(max) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    (out, chars.next().is_some())
}

/// A library's message with every quoted run (`"…"` or `` `…` ``) longer than [`MAX_CHARS`] cut,
/// control characters escaped, and the whole capped at [`MAX_MESSAGE`] characters.
///
/// serde and serde_json quote the offending value whole ("invalid type: string \"…\"").
pub fn shorten_quotes(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..open]);
        let body_start = open + 1;
        let body_end = closing(&rest[body_start..], quote).map(|i| body_start + i);
        let body = &rest[body_start..body_end.unwrap_or(rest.len())];
        let (cut, long) = cut(body, MAX_CHARS);
        out.push(quote);
        out.push_str(&cut);
        if long {
            out.push('…');
        }
        out.push(quote);
        if long {
            out.push_str(&format!(" ({} bytes)", body.len()));
        }
        match body_end {
            Some(end) => rest = &rest[end + 1..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    let (capped, long) = cut(&out, MAX_MESSAGE);
    if long { format!("{capped}…") } else { capped }
}

/// Byte index of the quote that closes a run opened with `quote` (a backslash escapes the next
/// character inside double quotes, as in Rust's `{:?}` and JSON).
fn closing(s: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote == '"' {
            escaped = true;
        } else if c == quote {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole() {
        assert_eq!(quoted("5 minutes"), "\"5 minutes\"");
        assert_eq!(excerpt("minsize"), "minsize");
    }

    #[test]
    fn long_text_is_cut_with_its_size() {
        let long = "x".repeat(1000);
        assert_eq!(quoted(&long), format!("\"{}…\" (1000 bytes)", "x".repeat(80)));
        assert_eq!(excerpt(&long).chars().count(), 81);
        // Cut on characters, never inside one.
        assert!(quoted(&"é".repeat(100)).starts_with(&format!("\"{}…", "é".repeat(80))));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(quoted("a\u{1b}[2Jb\n"), "\"a\\u{1b}[2Jb\\n\"");
    }

    #[test]
    fn library_messages_lose_their_long_quotes() {
        let long = "s".repeat(10_000);
        let m = shorten_quotes(&format!("invalid type: string \"{long}\", expected u32 at line 1 column 9"));
        assert!(m.starts_with(&format!("invalid type: string \"{}…\" (10000 bytes), expected", "s".repeat(80))), "{m}");
        assert!(m.ends_with("at line 1 column 9"), "{m}");
        let m = shorten_quotes(&format!("unknown field `{long}`, expected `a`"));
        assert!(m.contains("…` (10000 bytes), expected `a`"), "{m}");
        // Escaped quotes stay inside their run; an unclosed run is cut too.
        assert_eq!(shorten_quotes(r#"got "a\"b" here"#), r#"got "a\"b" here"#);
        assert!(shorten_quotes(&format!("got \"{long}")).chars().count() < 120);
        assert!(shorten_quotes(&long).chars().count() <= MAX_MESSAGE + 1);
    }
}
