//! Headless Chromium for the browser tests: where it is, how it runs (nothing reaches the
//! network), and what a test does when it is missing.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The Debian package's binary.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether the test `name` can run. Without Chromium it fails when EBBFLOW_REQUIRE_BROWSER is set
/// (`.ci/run` sets it, so CI can never pass by skipping) and otherwise prints a SKIP banner
/// straight to the process's stderr: the harness captures `eprintln!` of a passing test, and a
/// skip nobody sees reads as a pass.
pub fn available(name: &str) -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var_os("EBBFLOW_REQUIRE_BROWSER").is_none(),
        "EBBFLOW_REQUIRE_BROWSER is set but {CHROMIUM} is missing: apt-get install -y chromium"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIP {name}: {CHROMIUM} not found; NOTHING WAS CHECKED (apt-get install -y chromium; \
         .ci/run sets EBBFLOW_REQUIRE_BROWSER=1 to make this fail) ***\n"
    );
    false
}

/// Run headless Chromium on `url` with everything that would reach the network turned off, the
/// page's script given `budget_ms` of virtual time, and `extra` flags (e.g. `--dump-dom`).
pub fn chromium(profile: &Path, budget_ms: u32, extra: &[&str], url: &str) -> Output {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        // Not UTC, so a page that reads a UTC time as local time shows it in the test.
        .env("TZ", "America/Los_Angeles")
        .stdin(Stdio::null())
        .output()
        .expect("run chromium")
}
