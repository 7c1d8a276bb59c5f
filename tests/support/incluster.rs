//! The controller run with in-cluster configuration, as a pod sees it (the path EKS uses):
//! the ServiceAccount's token, the cluster CA and the pod's namespace as files at
//! /var/run/secrets/kubernetes.io/serviceaccount, `KUBERNETES_SERVICE_HOST/PORT` in the
//! environment, no KUBECONFIG and no ~/.kube. Two ways to give it that: in a private mount
//! namespace on this host ([`spawn_in_mount_namespace`]), or from the image
//! ([`spawn_from_image`], tests/image.rs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;

use super::{Bed, free_port};

/// Where a pod finds its ServiceAccount credentials (kube-rs reads them from here).
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What a pod of deploy/manifests.yaml is given: the files of its ServiceAccount volume
/// (in a directory of the test's own) and the API server's address for
/// `KUBERNETES_SERVICE_HOST/PORT` (its own: the bed has no Service network behind the
/// `kubernetes` Service's ClusterIP; the server certificate names both).
pub struct PodIdentity {
    /// Holds `token`, `ca.crt` and `namespace`, as the kubelet projects them.
    pub dir: PathBuf,
    pub service_host: String,
    pub service_port: String,
    /// The pod's namespace: the ServiceAccount's (the Deployment runs there).
    pub namespace: String,
}

impl PodIdentity {
    /// The bed controller's identity (deploy/manifests.yaml's ServiceAccount, a
    /// TokenRequest token), taken from the kubeconfig the bed wrote for it.
    pub fn of(bed: &Bed) -> PodIdentity {
        let kubeconfig: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&bed.kubeconfig).expect("the bed's ServiceAccount kubeconfig")).unwrap();
        let cluster = &kubeconfig["clusters"][0]["cluster"];
        let token = kubeconfig["users"][0]["user"]["token"].as_str().expect("a token in the ServiceAccount kubeconfig");
        let ca = base64::engine::general_purpose::STANDARD
            .decode(cluster["certificate-authority-data"].as_str().expect("the CA in the kubeconfig"))
            .expect("base64 CA");
        let server = cluster["server"].as_str().unwrap();
        let (service_host, service_port) =
            server.strip_prefix("https://").and_then(|a| a.rsplit_once(':')).unwrap_or_else(|| panic!("server {server} has no port"));
        let namespace = token_namespace(token);

        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-serviceaccount", bed.ns));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), token).unwrap();
        std::fs::write(dir.join("ca.crt"), ca).unwrap();
        std::fs::write(dir.join("namespace"), &namespace).unwrap();
        // Readable by the image's non-root user, as the kubelet makes a projected token for
        // the pod's runAsUser.
        for file in ["token", "ca.crt", "namespace"] {
            std::fs::set_permissions(dir.join(file), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        }
        PodIdentity { dir, service_host: service_host.to_string(), service_port: service_port.to_string(), namespace }
    }
}

/// The namespace of the ServiceAccount a token was issued to (its `sub` claim is
/// `system:serviceaccount:<namespace>:<name>`).
fn token_namespace(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url claims")).unwrap();
    let sub = claims["sub"].as_str().expect("a sub claim");
    sub.strip_prefix("system:serviceaccount:")
        .and_then(|s| s.split_once(':'))
        .map(|(ns, _)| ns.to_string())
        .expect("a ServiceAccount token")
}

/// The whole environment of the controller's container: the variables the kubelet sets
/// (`KUBERNETES_SERVICE_*`, the Deployment's POD_NAME/POD_NAMESPACE), the AWS account
/// (IRSA's part in EKS) and a log level; nothing inherited from the test.
pub fn pod_env(bed: &Bed, pod: &PodIdentity, endpoint: &str) -> Vec<(String, String)> {
    [
        ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("KUBERNETES_SERVICE_HOST", &pod.service_host),
        ("KUBERNETES_SERVICE_PORT", &pod.service_port),
        ("POD_NAME", &format!("alb-controller-{}", bed.cluster)),
        ("POD_NAMESPACE", &pod.namespace),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", &bed.account),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("RUST_LOG", "info,alb_controller=debug"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The controller's arguments for the bed's namespace, cluster and VPC, as the bed's own.
pub fn controller_args(bed: &Bed, metrics_port: u16) -> Vec<String> {
    let args = ["run", "--cluster-name", &bed.cluster, "--aws-vpc-id", &bed.vpc_id, "--watch-namespace", &bed.ns];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend(["--default-target-type", "ip", "--metrics-bind-address"].map(String::from));
    args.push(format!("127.0.0.1:{metrics_port}"));
    args
}

/// A controller started in-cluster style; killed (with what it spawned) when dropped.
pub struct InClusterController {
    child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl InClusterController {
    /// The process the test started (for the image: `buildah run`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the started process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The log so far, for assertion messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the started process as Kubernetes stops a pod (SIGTERM; `buildah run` passes it
    /// on to the controller, its grandchild, and waits for it); if it is still there after
    /// 10 s, kills it and everything below it, each by its PID.
    pub fn kill(&mut self) {
        if self.exited().is_some() {
            return; // reaped: its PID may be another process's by now
        }
        let below = descendants(self.child.id());
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.exited().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.exited().is_none() {
            for pid in below.into_iter().rev() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for InClusterController {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The PIDs below `pid`, parents before their children.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        // Each thread lists the children it forked (Go programs fork from any thread).
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else { continue };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

fn log_file(bed: &Bed, what: &str) -> (PathBuf, std::fs::File) {
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{what}.log", bed.ns));
    let file = std::fs::File::create(&log).unwrap();
    eprintln!("[{}] {what} controller log: {}", bed.ns, log.display());
    (log, file)
}

/// Runs `bin` on this host as a pod would see its environment: in a private mount
/// namespace (nothing on the host changes, parallel tests do not see each other's files)
/// where a fresh tmpfs on /run (/var/run links there) holds only the ServiceAccount
/// volume, with [`pod_env`] as its whole environment and an empty HOME (no ~/.kube).
/// Needs root (CAP_SYS_ADMIN) for the mounts.
pub fn spawn_in_mount_namespace(bed: &Bed, pod: &PodIdentity, bin: &Path, endpoint: &str) -> InClusterController {
    let metrics_port = free_port();
    let (log, log_file) = log_file(bed, "incluster");
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-home", bed.ns));
    std::fs::create_dir_all(&home).unwrap();
    // `mount -n`: no /run/mount/utab on the host either.
    let script = format!(
        "mount -n -t tmpfs -o mode=0755 tmpfs /run && mkdir -p {SERVICE_ACCOUNT_DIR} && \
         mount -n --bind -o ro \"$0\" {SERVICE_ACCOUNT_DIR} && exec \"$@\""
    );
    let child = Command::new("/usr/bin/unshare")
        .args(["--mount", "--propagation", "private", "/bin/sh", "-c", &script])
        .arg(&pod.dir)
        .arg(bin)
        .args(controller_args(bed, metrics_port))
        .env_clear()
        .envs(pod_env(bed, pod, endpoint))
        .env("HOME", &home)
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start the controller in a mount namespace (unshare)");
    InClusterController { child, metrics_port, log }
}

/// Runs the image's entrypoint in the working container `container` (`buildah from`) with
/// chroot isolation on the host's network, the ServiceAccount volume mounted where a pod
/// has it and [`pod_env`] set, as the image's user. `buildah` is the command with its
/// storage options; `entrypoint` is the image's.
pub fn spawn_from_image(
    bed: &Bed,
    pod: &PodIdentity,
    mut buildah: Command,
    container: &str,
    entrypoint: &[String],
    endpoint: &str,
) -> InClusterController {
    let metrics_port = free_port();
    let (log, log_file) = log_file(bed, "image");
    buildah.args(["run", "--isolation", "chroot", "--network", "host"]);
    buildah.arg("--volume").arg(format!("{}:{SERVICE_ACCOUNT_DIR}:ro", pod.dir.display()));
    for (key, value) in pod_env(bed, pod, endpoint) {
        buildah.arg("--env").arg(format!("{key}={value}"));
    }
    let child = buildah
        .arg(container)
        .arg("--")
        .args(entrypoint)
        .args(controller_args(bed, metrics_port))
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("buildah run");
    InClusterController { child, metrics_port, log }
}

/// An Ingress for the Service `web` of [`super::WEB`].
const INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

/// Applies an Ingress and its Service (a Deployment's pod) and waits until `controller`
/// (the only one running for the bed) gave it an ALB: the hostname in its status names a
/// load balancer that AWS has, tagged for the bed's cluster, whose target group holds the
/// pod, and the AWS calls were this process's.
pub async fn assert_ingress_converges(bed: &Bed, controller: &mut InClusterController) {
    bed.apply(super::WEB).await;
    bed.apply(INGRESS).await;
    let hostname = super::eventually("the Ingress gets its ALB's hostname", Duration::from_secs(120), || {
        if let Some(status) = controller.exited() {
            panic!("the in-cluster controller exited ({status}):\n{}", controller.log_text());
        }
        bed.hostname("shop")
    })
    .await;
    let lb = bed.load_balancer_by_dns(&hostname).await;
    let lb_arn = lb.load_balancer_arn().unwrap();
    let tags = bed.tags(lb_arn).await;
    assert_eq!(tags.get(super::TAG_CLUSTER), Some(&bed.cluster), "the ALB is tagged for the bed's cluster: {tags:?}");
    assert_eq!(tags.get(super::TAG_STACK).map(String::as_str), Some(format!("{}/shop", bed.ns).as_str()));

    let pod = bed.wait_pod_targets("app=web", 1, 8080).await;
    let tg =
        bed.stack_arns(&format!("{}/shop", bed.ns)).await.into_iter().find(|arn| arn.contains(":targetgroup/")).expect("a target group");
    super::eventually("the target group holds the pod", Duration::from_secs(60), || async {
        (bed.targets(&tg).await == pod).then_some(())
    })
    .await;
    let calls = super::aws_call_count(controller.metrics_port).await;
    assert!(calls > 0, "the in-cluster controller made the AWS calls (its metrics count {calls})");
}

/// Deletes the bed's namespace while `controller` runs (the bed's own controller, stopped,
/// would not) and waits until it is gone: the Ingress's finalizer released, its ALB deleted.
pub async fn assert_namespace_deleted(bed: &Bed, controller: &mut InClusterController) {
    let stack = format!("{}/shop", bed.ns);
    super::delete_namespace(&bed.admin, &bed.ns, Duration::from_secs(90))
        .await
        .unwrap_or_else(|e| panic!("{e}; controller log: {}", controller.log.display()));
    assert_eq!(bed.stack_arns(&stack).await, Vec::<String>::new(), "the Ingress's AWS resources are gone");
}
