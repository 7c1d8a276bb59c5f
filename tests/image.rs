//! The container image recipe (deploy/Dockerfile). No Docker engine runs here, so what can
//! be checked without one is: its build step is exactly `make release`, and its build
//! context (the repository less .dockerignore) is enough for Cargo to resolve the package
//! with the locked dependencies.

use std::path::Path;
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The first command of a Makefile target's recipe.
fn make_recipe(target: &str) -> String {
    let makefile = read("Makefile");
    let mut lines = makefile.lines().skip_while(|l| !l.starts_with(&format!("{target}:")));
    lines.next().unwrap_or_else(|| panic!("no `{target}:` target in the Makefile"));
    lines.find_map(|l| l.strip_prefix('\t')).unwrap_or_else(|| panic!("`{target}:` has no recipe")).trim().to_string()
}

#[test]
fn the_image_build_step_is_make_release() {
    let dockerfile = read("deploy/Dockerfile");
    let runs: Vec<&str> = dockerfile.lines().filter_map(|l| l.strip_prefix("RUN ")).map(str::trim).collect();
    assert_eq!(runs, [make_recipe("release")], "deploy/Dockerfile must build with exactly `make release`'s command");
    let last_from = dockerfile.lines().rfind(|l| l.starts_with("FROM ")).unwrap();
    assert!(last_from.contains("nonroot"), "a non-root runtime image: {last_from}");
    assert!(dockerfile.lines().any(|l| l.starts_with("USER ") && !l.contains(" 0")), "runs as a non-root user");
}

fn copy_tree(from: &Path, to: &Path, skip: &[String]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip.contains(&name) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst, &[]);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

#[test]
fn the_image_build_context_is_enough_for_cargo() {
    let dockerfile = read("deploy/Dockerfile");
    assert!(dockerfile.lines().any(|l| l.trim() == "COPY . ."), "the build stage copies the context");
    // .dockerignore: one top-level name per line (what this repository uses).
    let ignored: Vec<String> =
        read(".dockerignore").lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect();
    assert!(ignored.iter().all(|p| !p.contains(['/', '*'])), "tests/image.rs only understands top-level names: {ignored:?}");
    let context = tempfile::tempdir().unwrap();
    copy_tree(Path::new(REPO), context.path(), &ignored);
    // `cargo fetch` reads every target the manifest declares and the lock file, as the
    // image's `cargo build --locked` will (offline: the registry cache is local).
    // For this machine's target only: the crates of other platforms are not in the cache.
    let rustc = Command::new("rustc").arg("-vV").output().unwrap();
    let host = String::from_utf8(rustc.stdout).unwrap().lines().find_map(|l| l.strip_prefix("host: ").map(str::to_string)).unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["fetch", "--locked", "--offline", "--target", &host])
        .current_dir(context.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "the image's build context does not build:\n{}", String::from_utf8_lossy(&out.stderr));
}
