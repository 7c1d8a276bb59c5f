//! What we read from Kubernetes: which Ingresses are ours, and their annotations.

pub mod annotations;
pub mod class;
pub mod gateway_api;
pub mod gateway_config;
pub mod gateway_objects;
pub mod grouping;
pub mod params;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;

/// A Secret's values as text: `data` decoded, then `stringData` (which wins, as the API
/// server merges it).
pub fn secret_data(secret: Secret) -> BTreeMap<String, String> {
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .chain(secret.string_data.unwrap_or_default())
        .collect()
}

/// A Service port an Ingress routes to directly (its default backend or a path).
pub struct BackendPort {
    pub service: String,
    /// The port number or name, as the backend gives it.
    pub port: String,
}

pub fn service_backends(ing: &Ingress) -> Vec<BackendPort> {
    let spec = ing.spec.as_ref();
    let default = spec.and_then(|s| s.default_backend.as_ref());
    let paths = spec
        .and_then(|s| s.rules.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter().map(|p| &p.backend));
    default
        .into_iter()
        .chain(paths)
        .filter_map(|b| {
            let svc = b.service.as_ref()?;
            let port = svc.port.as_ref()?;
            let port = port.number.map(|n| n.to_string()).or_else(|| port.name.clone())?;
            Some(BackendPort { service: svc.name.clone(), port })
        })
        .collect()
}
