//! Snapshot tests of `alb-controller plan`: every `tests/fixtures/*.yaml` (but `env.yaml`)
//! is planned against `tests/fixtures/env.yaml`, and its output (stdout, then a line
//! `exit: <code>`) must equal `tests/fixtures/<name>.plan`.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test --test snapshots` (re)writes the `.plan` files; review
//! the diff against LBC's documented behaviour before keeping it.

use std::path::{Path, PathBuf};
use std::process::Command;

const MIN_FIXTURES: usize = 30;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// The fixtures, sorted by name.
fn fixtures() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && p.file_name().is_some_and(|n| n != "env.yaml"))
        .collect();
    out.sort();
    out
}

/// Runs `plan` on one fixture: its snapshot text, or why the run itself is broken.
fn plan(fixture: &Path) -> Result<String, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let relative = fixture.strip_prefix(root).unwrap_or(fixture);
    let out = Command::new(env!("CARGO_BIN_EXE_alb-controller"))
        .current_dir(root)
        .arg("plan")
        .arg("-f")
        .arg(relative)
        .args(["--env", "tests/fixtures/env.yaml", "--cluster-name", "snap"])
        .output()
        .map_err(|e| format!("cannot run alb-controller: {e}"))?;
    let stdout = String::from_utf8(out.stdout).map_err(|e| format!("stdout is not UTF-8: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().ok_or("killed by a signal")?;
    // 0 = no problem, 1 = problems (part of the snapshot); anything else is a broken fixture.
    if !matches!(code, 0 | 1) || !stderr.trim().is_empty() {
        return Err(format!("exit code {code}, stderr:\n{stderr}\nstdout:\n{stdout}"));
    }
    Ok(format!("{stdout}exit: {code}\n"))
}

/// A line diff (longest common subsequence): `-` expected only, `+` actual only.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("    {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("  - {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("  + {}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[test]
fn plan_output_matches_the_snapshots() {
    let update = std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
    let fixtures = fixtures();
    let mut failures = Vec::new();
    for fixture in &fixtures {
        let name = fixture.file_stem().unwrap().to_string_lossy().into_owned();
        let snapshot = fixture.with_extension("plan");
        let actual = match plan(fixture) {
            Ok(text) => text,
            Err(why) => {
                failures.push(format!("{name}: plan did not run cleanly: {why}"));
                continue;
            }
        };
        if update {
            if std::fs::read_to_string(&snapshot).ok().as_deref() != Some(actual.as_str()) {
                std::fs::write(&snapshot, &actual).unwrap_or_else(|e| panic!("{}: {e}", snapshot.display()));
                eprintln!("updated {}", snapshot.display());
            }
            continue;
        }
        match std::fs::read_to_string(&snapshot) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}: plan output differs from tests/fixtures/{name}.plan (- snapshot, + now):\n{}",
                diff(&expected, &actual)
            )),
            Err(e) => failures.push(format!("{name}: no snapshot tests/fixtures/{name}.plan ({e}); plan now says:\n{actual}")),
        }
    }
    // Snapshots whose fixture is gone would silently stop being checked.
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "plan") && !path.with_extension("yaml").exists() {
            failures.push(format!("{}: snapshot without a fixture; delete it", path.display()));
        }
    }
    assert!(fixtures.len() >= MIN_FIXTURES, "only {} fixtures in tests/fixtures; expected at least {MIN_FIXTURES}", fixtures.len());
    assert!(
        failures.is_empty(),
        "{} of {} snapshots failed:\n\n{}\n\nIf the new output is right (check it against LBC's documented behaviour), \
         rewrite the snapshots with:\n    UPDATE_SNAPSHOTS=1 cargo test --test snapshots\n",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}
