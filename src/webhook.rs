//! The pod readiness-gate admission webhook, as LBC's: a Pod created in a namespace
//! labelled `elbv2.k8s.aws/pod-readiness-gate-inject=enabled` gets a readiness gate
//! `target-health.elbv2.k8s.aws/<target group>` for every IP target group that will
//! route to it. The controller sets the gate's condition True once the target is healthy.
//!
//! It fails open: any error answers "allowed, unchanged" (and the webhook configuration
//! says failurePolicy Ignore), so pod creation is never blocked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

use crate::k8s::class::ClassFilter;
use crate::k8s::grouping::{self, Snapshot};
use crate::k8s::params::IngressClassParams;
use crate::model::{BackendRef, TargetType, service_port};

pub const GATE_PREFIX: &str = "target-health.elbv2.k8s.aws/";
/// Added to gated pods so the controller can watch just them.
pub const GATED_LABEL: &str = "elbv2.k8s.aws/readiness-gated";

pub struct Webhook {
    pub client: Client,
    pub filter: ClassFilter,
    pub cluster: String,
    pub default_target_type: TargetType,
}

fn selects(svc: &Service, labels: &BTreeMap<String, String>) -> bool {
    match svc.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        Some(sel) if !sel.is_empty() => sel.iter().all(|(k, v)| labels.get(k) == Some(v)),
        _ => false,
    }
}

impl Webhook {
    /// The readiness gates a pod needs: one per IP target group routing to it.
    async fn gates(&self, namespace: &str, pod: &Pod) -> Result<Vec<String>, kube::Error> {
        let labels = pod.labels().clone();
        let services: Vec<Service> = Api::<Service>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|s| selects(s, &labels))
            .collect();
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let ingresses = Api::<Ingress>::namespaced(self.client.clone(), namespace).list(&ListParams::default()).await?.items;
        // What one admission needs, read when it comes (any replica can serve it).
        let snapshot = Snapshot {
            classes: Api::<IngressClass>::all(self.client.clone())
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .map(Arc::new)
                .collect(),
            params: Api::<IngressClassParams>::all(self.client.clone())
                .list(&ListParams::default())
                .await
                .map(|l| l.items.into_iter().map(Arc::new).collect())
                .unwrap_or_default(),
            namespaces: Api::<Namespace>::all(self.client.clone()).get_opt(namespace).await?.into_iter().collect(),
        };
        let mut gates = Vec::new();
        for ing in ingresses.iter().filter(|i| grouping::is_active(&snapshot, &self.filter, i)) {
            let Ok(group) = grouping::group_of(&snapshot, &self.filter, ing) else { continue };
            let params_target_type = match grouping::class_params(&snapshot, &self.filter, ing) {
                Some(Ok(p)) => p.target_type.as_deref().and_then(|t| TargetType::parse(t).ok()),
                _ => None,
            };
            let backend = BackendRef {
                cluster: &self.cluster,
                group: &group,
                ing,
                target_type: params_target_type,
                default_target_type: self.default_target_type,
            };
            for b in crate::k8s::service_backends(ing) {
                let Some(svc) = services.iter().find(|s| s.name_any() == b.service) else { continue };
                let Some(svc_port) = service_port(svc, &b.port) else { continue };
                if let Ok((name, target_type)) = backend.target_group(svc, svc_port, &b.port)
                    && target_type == TargetType::Ip
                {
                    let gate = format!("{GATE_PREFIX}{name}");
                    if !gates.contains(&gate) {
                        gates.push(gate);
                    }
                }
            }
        }
        Ok(gates)
    }

    /// The AdmissionReview response for a Pod CREATE.
    async fn review(&self, review: Value) -> Value {
        let request = &review["request"];
        let uid = request["uid"].clone();
        let allowed = |patch: Option<Vec<Value>>| {
            let mut response = json!({"uid": uid, "allowed": true});
            if let Some(ops) = patch.filter(|p| !p.is_empty()) {
                let encoded = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&ops).unwrap_or_default());
                response["patchType"] = json!("JSONPatch");
                response["patch"] = json!(encoded);
            }
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
        };
        let Ok(pod) = serde_json::from_value::<Pod>(request["object"].clone()) else { return allowed(None) };
        let namespace = request["namespace"].as_str().map(str::to_string).or_else(|| pod.namespace()).unwrap_or_default();
        let gates = match self.gates(&namespace, &pod).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %crate::telemetry::Excerpt(&e), namespace, "readiness-gate webhook: allowing the pod unchanged");
                return allowed(None);
            }
        };
        let existing: Vec<String> =
            pod.spec.as_ref().and_then(|s| s.readiness_gates.as_ref()).into_iter().flatten().map(|g| g.condition_type.clone()).collect();
        let new: Vec<&String> = gates.iter().filter(|g| !existing.contains(g)).collect();
        if new.is_empty() {
            return allowed(None);
        }
        let mut ops = Vec::new();
        if pod.spec.as_ref().and_then(|s| s.readiness_gates.as_ref()).is_none() {
            ops.push(json!({"op": "add", "path": "/spec/readinessGates", "value": []}));
        }
        for g in new {
            ops.push(json!({"op": "add", "path": "/spec/readinessGates/-", "value": {"conditionType": g}}));
        }
        if pod.metadata.labels.is_none() {
            ops.push(json!({"op": "add", "path": "/metadata/labels", "value": {}}));
        }
        ops.push(json!({"op": "add", "path": format!("/metadata/labels/{}", GATED_LABEL.replace('/', "~1")), "value": "true"}));
        allowed(Some(ops))
    }
}

async fn handle(hook: Arc<Webhook>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let body = req.into_body().collect().await?.to_bytes();
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = hook.review(review).await;
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&answer).unwrap_or_default())))
        .expect("a valid response"))
}

/// Serves the webhook over TLS with the given certificate and key (PEM files).
pub async fn serve(addr: SocketAddr, cert: &Path, key: &Path, hook: Arc<Webhook>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let config = tokio_rustls::rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving the readiness-gate webhook");
    loop {
        let (stream, _) = listener.accept().await?;
        let (acceptor, hook) = (acceptor.clone(), hook.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let service = hyper::service::service_fn(move |req| handle(hook.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
        });
    }
}
