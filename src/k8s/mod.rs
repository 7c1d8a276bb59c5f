//! What we read from Kubernetes: which Ingresses are ours, and their annotations.

pub mod annotations;
pub mod class;
pub mod grouping;
pub mod params;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

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
