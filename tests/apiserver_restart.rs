//! The Kubernetes API server goes away and comes back: the controller's watches are
//! re-established within seconds, /readyz says when its caches are not in sync, and an
//! Ingress edited afterwards converges at once. The outage outlasts the leader lease: the
//! controller stops writing, and takes its lease back when the API server answers.
//!
//! The test runs its own etcd + kube-apiserver (hack/controlplane/up.sh under a temporary
//! BED_DIR): stopping the bed's API server would break every test running beside it.
//! AWS is the bed's LocalStack, in the test's own account as usual.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams};
use support::{Bed, eventually};

/// How long the API server stays down (what the issue measured).
const OUTAGE: Duration = Duration::from_secs(30);
/// An Ingress edited after the API server is back is in AWS within this.
const CONVERGED_AFTER_RESTART: Duration = Duration::from_secs(15);

const SHOP: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /a, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

/// A private etcd + kube-apiserver; torn down (by the PIDs in its state dir) when dropped,
/// also when the test fails.
struct ControlPlane {
    dir: PathBuf,
}

impl ControlPlane {
    fn up(name: &str) -> ControlPlane {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", rand::random_range(100_000..999_999u32)));
        std::fs::create_dir_all(&dir).unwrap();
        let plane = ControlPlane { dir };
        plane.script("up.sh", &[]);
        plane
    }

    fn script(&self, script: &str, args: &[&str]) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/controlplane/");
        let out =
            Command::new(format!("{path}{script}")).args(args).env("BED_DIR", &self.dir).output().expect("run a control-plane script");
        assert!(out.status.success(), "{script} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("k8s/kubeconfig")
    }

    /// Stops only the kube-apiserver (etcd, port and PKI stay).
    fn stop_apiserver(&self) {
        self.script("apiserver.sh", &["stop"]);
    }

    /// Starts it again on the same port; returns once it answers /readyz.
    fn start_apiserver(&self) {
        self.script("apiserver.sh", &["start"]);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/controlplane/down.sh")).env("BED_DIR", &self.dir).output();
    }
}

async fn ready(port: u16) -> bool {
    let response = support::get(port, "/readyz").await;
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}

/// Whether the listener has a rule whose path pattern is `path`.
async fn has_path(bed: &Bed, listener: &str, path: &str) -> bool {
    bed.rules(listener).await.iter().any(|r| {
        r.conditions().iter().any(|c| {
            let values = c.path_pattern_config().map(|p| p.values()).filter(|v| !v.is_empty()).unwrap_or(c.values());
            values.iter().any(|v| v == path)
        })
    })
}

#[tokio::test]
async fn an_ingress_edited_after_an_api_server_restart_converges_within_seconds() {
    let plane = ControlPlane::up("apiserver-restart");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_alb-controller"));
    // With leader election, as the chart runs it: the 30 s outage outlasts the 15 s lease.
    let mut bed = Bed::start_on("apiserver-restart", &plane.kubeconfig(), bin, &["--leader-elect"]).await;
    if let Err(e) = bed.wait_metrics_up().await {
        panic!("{e}");
    }
    let port = bed.metrics_port();
    bed.apply(support::WEB).await;
    bed.apply(SHOP).await;
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let listener = bed.listeners(lb.load_balancer_arn().unwrap()).await.remove(0).listener_arn().unwrap().to_string();
    eventually("the rule for /a is in AWS", Duration::from_secs(30), || async { has_path(&bed, &listener, "/a").await.then_some(()) })
        .await;
    eventually("/readyz is ready", Duration::from_secs(30), || async { ready(port).await.then_some(()) }).await;

    plane.stop_apiserver();
    let down_since = Instant::now();
    let mut not_ready_seen = false;
    while down_since.elapsed() < OUTAGE {
        not_ready_seen |= !ready(port).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    plane.start_apiserver();
    let back = Instant::now();

    let edit = serde_json::json!([{"op": "add", "path": "/spec/rules/0/http/paths/-",
        "value": {"path": "/b", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}}]);
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::<()>::Json(serde_json::from_value(edit).unwrap())).await.unwrap();
    loop {
        not_ready_seen |= !ready(port).await;
        if has_path(&bed, &listener, "/b").await {
            break;
        }
        assert!(
            back.elapsed() < CONVERGED_AFTER_RESTART,
            "the edit made after the API server came back is not in AWS after {:?} (log: {})",
            back.elapsed(),
            bed.log.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("the edit reached AWS {:?} after the API server was ready again", back.elapsed());
    assert!(not_ready_seen, "/readyz said ready all the time the API server was down (log: {})", bed.log.display());
    eventually("/readyz is ready again", Duration::from_secs(15), || async { ready(port).await.then_some(()) }).await;
}
