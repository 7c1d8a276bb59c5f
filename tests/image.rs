//! The container image, built and run for real: `hack/image.sh build` (what `make image`
//! runs: deploy/rootfs.sh, then `buildah bud` of deploy/Dockerfile) and the controller
//! started from the image with in-cluster configuration against the bed.
//!
//! To keep `make test` cheap the image holds the debug binary Cargo built for the tests,
//! not a `make release` build (`ALB_CONTROLLER_BIN=target/release/alb-controller` runs the
//! test with that); everything else is `make image`'s path. Needs buildah
//! (`make deps` installs it) and root, as the bed does.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::Bed;
use support::incluster::{PodIdentity, assert_ingress_converges, assert_namespace_deleted, descendants, spawn_from_image};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The test's own buildah storage (hack/image.sh's options), apart from `make image`'s.
fn buildah_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("buildah")
}

fn buildah() -> Command {
    let root = buildah_root();
    let mut command = Command::new("buildah");
    command.arg("--root").arg(root.join("storage")).arg("--runroot").arg(root.join("run")).args(["--storage-driver", "vfs"]);
    command
}

/// `buildah ARGS`'s standard output; panics with its error otherwise.
fn buildah_output(args: &[&str]) -> String {
    let out = buildah().args(args).output().expect("run buildah");
    assert!(out.status.success(), "buildah {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Removes what the test made in buildah's storage and on disk, also when it fails.
struct Cleanup {
    image: String,
    containers: Vec<String>,
    context: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = buildah().args(["umount", container]).output();
            let _ = buildah().args(["rm", container]).output();
        }
        let _ = buildah().args(["rmi", "--force", &self.image]).output();
        let _ = std::fs::remove_dir_all(&self.context);
    }
}

/// Every file and symlink under `root`, as absolute paths inside it.
fn files(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            files(root, &entry.path(), found);
        } else {
            found.insert(format!("/{}", entry.path().strip_prefix(root).unwrap().display()));
        }
    }
}

/// The shared libraries (and loader) `ldd` names for `bin`.
fn ldd(bin: &Path) -> BTreeSet<String> {
    let out = Command::new("ldd").arg(bin).output().expect("ldd");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [_, "=>", path, ..] if path.starts_with('/') => Some(path.to_string()),
                [path, ..] if path.starts_with('/') => Some(path.to_string()),
                _ => None,
            }
        })
        .collect()
}

/// The effective user and group of a process (/proc/PID/status).
fn ids(pid: u32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field =
        |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().nth(1)).unwrap().to_string();
    (field("Uid:"), field("Gid:"))
}

#[tokio::test]
async fn the_image_runs_the_controller_in_cluster() {
    let bin =
        std::env::var_os("ALB_CONTROLLER_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_alb-controller")));
    let bin = bin.as_path();
    let suffix: u32 = rand::random_range(100_000..999_999);
    let image = format!("alb-controller-test:{suffix}");
    let context = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("image-{suffix}"));
    std::fs::create_dir_all(&context).unwrap();
    let mut cleanup = Cleanup { image: image.clone(), containers: Vec::new(), context: context.clone() };
    // The repository's .dockerignore and something it must keep out of the image.
    std::fs::copy(Path::new(REPO).join(".dockerignore"), context.join(".dockerignore")).unwrap();
    std::fs::write(context.join("left-out"), "not in the image").unwrap();

    let archive = context.join("image.oci.tar");
    let build = Command::new(Path::new(REPO).join("hack/image.sh"))
        .args(["build".as_ref(), bin.as_os_str()])
        .env("IMAGE_TAG", &image)
        .env("IMAGE_CONTEXT", &context)
        .env("IMAGE_ARCHIVE", &archive)
        .env("BUILDAH_ROOT", buildah_root())
        .output()
        .expect("run hack/image.sh");
    assert!(build.status.success(), "hack/image.sh build: {}", String::from_utf8_lossy(&build.stderr));
    let listing = Command::new("tar").arg("tf").arg(&archive).output().expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.lines().any(|l| l == "index.json") && listing.lines().any(|l| l == "oci-layout"), "an OCI archive:\n{listing}");

    // The image's configuration: non-root, the controller as entrypoint, `run` by default.
    let inspect: serde_json::Value = serde_json::from_str(&buildah_output(&["inspect", "--type", "image", &image])).unwrap();
    let config = &inspect["OCIv1"]["config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/usr/local/bin/alb-controller"]), "{config}");
    assert_eq!(config["Cmd"], serde_json::json!(["run"]), "{config}");
    let entrypoint: Vec<String> = serde_json::from_value(config["Entrypoint"].clone()).unwrap();

    // Its files: the controller, its libraries, the CA bundle and the users; no shell.
    let container = buildah_output(&["from", &image]);
    cleanup.containers.push(container.clone());
    let root = PathBuf::from(buildah_output(&["mount", &container]));
    let mut found = BTreeSet::new();
    files(&root, &root, &mut found);
    let mut want: BTreeSet<String> =
        ["/usr/local/bin/alb-controller", "/etc/ssl/certs/ca-certificates.crt", "/etc/passwd", "/etc/group"].map(String::from).into();
    want.extend(ldd(bin));
    assert_eq!(found, want, "the image holds exactly the controller and what it needs");
    assert!(!root.join("bin/sh").exists(), "no shell in the image");
    assert_eq!(std::fs::read(root.join("usr/local/bin/alb-controller")).unwrap(), std::fs::read(bin).unwrap(), "the binary given");
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.lines().any(|l| l.starts_with("nonroot:x:65532:65532:")), "{passwd}");
    buildah_output(&["umount", &container]);

    // Run from the image, in-cluster, against the bed.
    let mut bed = Bed::start("image").await;
    bed.kill_controller();
    let pod = PodIdentity::of(&bed);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let mut controller = spawn_from_image(&bed, &pod, buildah(), &container, &entrypoint, &endpoint);
    assert_ingress_converges(&bed, &mut controller).await;
    let process = descendants(controller.pid())
        .into_iter()
        .find(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "alb-controller"))
        .expect("the controller runs under buildah run");
    assert_eq!(ids(process), ("65532".to_string(), "65532".to_string()), "the controller runs as the image's user");
    assert_namespace_deleted(&bed, &mut controller).await;
    controller.kill();
    support::eventually("the controller from the image is gone", std::time::Duration::from_secs(10), || async {
        let state = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
        (state.is_empty() || state.contains(") Z ")).then_some(())
    })
    .await;
}
