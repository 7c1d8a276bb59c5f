//! What the controller writes to Kubernetes: Events, status, finalizers.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress, IngressPortStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
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

/// kube's Recorder folds every Event of one reason on an object into one series and keeps
/// the first note, so a second, different Warning (two missing Services; another problem
/// after a fix) would never show. One Recorder per note: each folds only its own repeats.
static RECORDERS: LazyLock<Mutex<HashMap<String, Recorder>>> = LazyLock::new(Default::default);
/// Past this many distinct notes the map starts again (repeats then make new Events).
const MAX_RECORDERS: usize = 512;

fn recorder_for(ctx: &Context, note: &str) -> Recorder {
    let mut recorders = RECORDERS.lock().unwrap_or_else(PoisonError::into_inner);
    if recorders.len() >= MAX_RECORDERS && !recorders.contains_key(note) {
        recorders.clear();
    }
    recorders.entry(note.to_string()).or_insert_with(|| Recorder::new(ctx.client.clone(), ctx.reporter.clone())).clone()
}

pub async fn publish(ctx: &Context, ing: &Ingress, type_: EventType, reason: &str, note: String) {
    let note = bounded(note);
    let recorder = recorder_for(ctx, &note);
    let event = Event { type_, reason: reason.into(), note: Some(note), action: "Reconcile".into(), secondary: None };
    if let Err(e) = recorder.publish(&event, &ing.object_ref(&())).await {
        tracing::warn!(error = %crate::telemetry::Excerpt(&e), reason, "publishing an Event failed");
    }
}

/// `status.loadBalancer.ingress` as LBC v3 writes it: the load balancer's DNS name and
/// every listener port of it, sorted, for every member of the group (`None`: no entry).
fn lb_status(hostname: Option<&str>, ports: &[i32]) -> Option<Vec<IngressLoadBalancerIngress>> {
    let mut ports = ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    let ports = ports.into_iter().map(|port| IngressPortStatus { port, protocol: "TCP".into(), error: None }).collect::<Vec<_>>();
    Some(vec![IngressLoadBalancerIngress { hostname: Some(hostname?.to_string()), ip: None, ports: (!ports.is_empty()).then_some(ports) }])
}

/// Writes the load balancer status unless it already says so (a resync writes nothing).
pub async fn patch_status(ctx: &Context, ing: &Ingress, hostname: Option<&str>, ports: &[i32]) -> Result<(), Error> {
    let want = lb_status(hostname, ports);
    let current = ing.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.clone()).filter(|i| !i.is_empty());
    if current == want {
        return Ok(());
    }
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ing.namespace().unwrap_or_default());
    // A merge patch replaces the list whole.
    let patch = json!({"status": {"loadBalancer": {"ingress": want}}});
    match api.patch_status(&ing.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await {
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

    #[test]
    fn the_status_lists_every_listener_port_sorted_as_tcp() {
        let status = lb_status(Some("lb.example.com"), &[443, 80, 443]).unwrap();
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!([{"hostname": "lb.example.com", "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]}])
        );
        assert_eq!(lb_status(None, &[80]), None, "no load balancer, no entry");
    }
}
