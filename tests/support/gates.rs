//! The controller's readiness-gate webhook wired into the bed's API server for one test's
//! namespace, as LBC's Helm chart wires it: a serving certificate signed by the bed's CA,
//! the namespace label `elbv2.k8s.aws/pod-readiness-gate-inject=enabled`, and a
//! MutatingWebhookConfiguration (failurePolicy Ignore) selecting that namespace only.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::{Bed, eventually};

pub struct GateWebhook {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    addr: String,
}

impl GateWebhook {
    /// A certificate for 127.0.0.1 on a free port (the API server calls the controller there).
    pub fn new() -> GateWebhook {
        let dir = tempfile::tempdir().unwrap();
        let ca_cert = std::env::var("BED_K8S_CA_CERT").expect("BED_K8S_CA_CERT (the bed's env)");
        let ca_key = std::env::var("BED_K8S_CA_KEY").expect("BED_K8S_CA_KEY (the bed's env)");
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        let (cert, key, csr, ext) = (path("tls.crt"), path("tls.key"), path("tls.csr"), path("ext.cnf"));
        std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl").args(args).output().expect("run openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &key]);
        openssl(&["req", "-new", "-key", &key, "-subj", "/CN=alb-controller-webhook", "-out", &csr]);
        #[rustfmt::skip]
        openssl(&["x509", "-req", "-in", &csr, "-CA", &ca_cert, "-CAkey", &ca_key, "-CAcreateserial",
            "-days", "1", "-extfile", &ext, "-out", &cert]);
        let port = super::free_port();
        GateWebhook { cert: cert.into(), key: key.into(), addr: format!("127.0.0.1:{port}"), _dir: dir }
    }

    /// The controller flags that serve the webhook.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--webhook-cert-file".into(),
            self.cert.display().to_string(),
            "--webhook-key-file".into(),
            self.key.display().to_string(),
            "--webhook-bind-address".into(),
            self.addr.clone(),
        ]
    }

    fn configuration_name(bed: &Bed) -> String {
        format!("alb-gates-{}", bed.ns)
    }

    /// Labels the bed's namespace and registers the webhook for it.
    pub async fn install(&self, bed: &Bed) {
        let label = serde_json::json!({"metadata": {"labels": {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}}});
        Api::<Namespace>::all(bed.client.clone()).patch(&bed.ns, &PatchParams::default(), &Patch::Merge(label)).await.unwrap();
        let ca = std::fs::read(std::env::var("BED_K8S_CA_CERT").unwrap()).unwrap();
        let ca_bundle = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca);
        let webhook = serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": Self::configuration_name(bed)},
            "webhooks": [{
                "name": "mpod.elbv2.k8s.aws",
                "clientConfig": {"url": format!("https://{}/mutate-v1-pod", self.addr), "caBundle": ca_bundle},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": bed.ns, "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}},
                "failurePolicy": "Ignore", "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5
            }]
        });
        let hooks: Api<MutatingWebhookConfiguration> = Api::all(bed.client.clone());
        hooks.create(&PostParams::default(), &serde_json::from_value(webhook).unwrap()).await.unwrap();
    }

    /// Waits until a pod with `labels` would get a readiness gate (a dry-run create: the
    /// webhook fails open, so pods created before it serves would have none).
    pub async fn wait_serving(&self, bed: &Bed, labels: serde_json::Value) {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "gate-probe", "labels": labels},
            "spec": {"containers": [{"name": "probe", "image": "probe"}]}
        }))
        .unwrap();
        let dry_run = PostParams { dry_run: true, ..Default::default() };
        eventually("the webhook injects a readiness gate", Duration::from_secs(60), || async {
            let created = bed.api::<Pod>().create(&dry_run, &pod).await.ok()?;
            let gates = created.spec?.readiness_gates?;
            gates.iter().any(|g| g.condition_type.starts_with("target-health.elbv2.k8s.aws/")).then_some(())
        })
        .await;
    }

    /// Removes the webhook's configuration (cluster-scoped, so it outlives the namespace).
    pub async fn uninstall(&self, bed: &Bed) {
        let hooks: Api<MutatingWebhookConfiguration> = Api::all(bed.client.clone());
        let _ = hooks.delete(&Self::configuration_name(bed), &Default::default()).await;
    }
}
