//! What the controller writes to Kubernetes: Events, status, finalizers.

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Context, Error};

/// The API server refuses an Event whose note is longer than this (in bytes).
const MAX_NOTE: usize = 1024;

/// A note the API server accepts: at most [`MAX_NOTE`] bytes, cut on a character boundary
/// (messages put the annotation and the reason first, so the cut loses the least).
fn bounded(note: String) -> String {
    if note.len() <= MAX_NOTE {
        return note;
    }
    let mut end = MAX_NOTE - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

pub async fn publish(ctx: &Context, ing: &Ingress, type_: EventType, reason: &str, note: String) {
    let event = Event { type_, reason: reason.into(), note: Some(bounded(note)), action: "Reconcile".into(), secondary: None };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_notes_are_cut_to_what_the_api_server_accepts() {
        assert_eq!(bounded("short".into()), "short");
        let long = format!("annotation alb.ingress.kubernetes.io/tags: {}", "é".repeat(2000));
        let cut = bounded(long.clone());
        assert!(cut.len() <= MAX_NOTE && cut.ends_with('…'), "{}", cut.len());
        assert!(cut.starts_with("annotation alb.ingress.kubernetes.io/tags: "));
        assert_eq!(bounded("x".repeat(MAX_NOTE)).len(), MAX_NOTE, "exactly the limit is kept whole");
    }
}
