//! What the controller writes to Kubernetes: Events, status, finalizers.

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Context, Error};

pub async fn publish(ctx: &Context, ing: &Ingress, type_: EventType, reason: &str, note: String) {
    let event = Event { type_, reason: reason.into(), note: Some(note), action: "Reconcile".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &ing.object_ref(&())).await {
        tracing::warn!(error = %e, "publishing event failed");
    }
}

pub fn current_hostname(ing: &Ingress) -> Option<&str> {
    ing.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?.first()?.hostname.as_deref()
}

pub async fn patch_status(ctx: &Context, ing: &Ingress, hostname: Option<&str>) -> Result<(), Error> {
    if current_hostname(ing) == hostname {
        return Ok(());
    }
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ing.namespace().unwrap_or_default());
    let lb = match hostname {
        Some(h) => json!({"ingress": [{"hostname": h}]}),
        None => json!({"ingress": null}),
    };
    match api.patch_status(&ing.name_any(), &PatchParams::default(), &Patch::Merge(json!({"status": {"loadBalancer": lb}}))).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Adds or removes one finalizer; `resourceVersion` makes this fail rather than clobber
/// a concurrent change (the reconcile is then retried). Returns the Ingress as patched.
pub async fn set_finalizer(ctx: &Context, ing: &Ingress, finalizer: &str, present: bool) -> Result<Ingress, Error> {
    let has = ing.finalizers().iter().any(|f| f == finalizer);
    if has == present {
        return Ok(ing.clone());
    }
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ing.namespace().unwrap_or_default());
    let mut finalizers: Vec<String> = ing.finalizers().iter().filter(|f| *f != finalizer).cloned().collect();
    if present {
        finalizers.push(finalizer.to_string());
    }
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": ing.resource_version()}});
    match api.patch(&ing.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(patched) => Ok(patched),
        Err(kube::Error::Api(s)) if s.code == 404 && !present => Ok(ing.clone()),
        Err(e) => Err(e.into()),
    }
}
