//! Which group an Ingress belongs to, and with which IngressClassParams — the same
//! answer for the controller (from its caches) and for `plan` (from files).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::ResourceExt;

use super::annotations::{PREFIX, parse_group_name};
use super::class::ClassFilter;
use super::params::{IngressClassParams, IngressClassParamsSpec, selects};
use crate::model::GroupId;

/// Read access to the cluster objects grouping depends on.
pub trait ClusterObjects {
    fn classes(&self) -> Vec<Arc<IngressClass>>;
    fn params(&self, name: &str) -> Option<Arc<IngressClassParams>>;
    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String>;
}

/// Cluster objects held in memory: what `plan` read from files, or what the webhook read
/// for one admission.
#[derive(Default)]
pub struct Snapshot {
    pub classes: Vec<Arc<IngressClass>>,
    pub params: Vec<Arc<IngressClassParams>>,
    pub namespaces: Vec<Namespace>,
}

impl ClusterObjects for Snapshot {
    fn classes(&self) -> Vec<Arc<IngressClass>> {
        self.classes.clone()
    }
    fn params(&self, name: &str) -> Option<Arc<IngressClassParams>> {
        self.params.iter().find(|p| p.name_any() == name).cloned()
    }
    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespaces.iter().find(|n| n.name_any() == namespace).map(|n| n.labels().clone()).unwrap_or_default()
    }
}

/// Our Ingress, not being deleted.
pub fn is_active(objects: &impl ClusterObjects, filter: &ClassFilter, ing: &Ingress) -> bool {
    ing.metadata.deletion_timestamp.is_none() && filter.is_ours(ing, objects.classes().iter().map(Arc::as_ref))
}

/// The IngressClassParams of an Ingress's class: `None` if it has none, an error if they
/// are referenced but missing or their namespaceSelector refuses the Ingress's namespace.
pub fn class_params(objects: &impl ClusterObjects, filter: &ClassFilter, ing: &Ingress) -> Option<Result<IngressClassParamsSpec, String>> {
    let classes = objects.classes();
    let class = filter.class_of(ing, classes.iter().map(Arc::as_ref))?;
    let p = class.spec.as_ref()?.parameters.as_ref()?;
    if p.api_group.as_deref() != Some("elbv2.k8s.aws") || p.kind != "IngressClassParams" {
        return None;
    }
    let Some(params) = objects.params(&p.name) else {
        return Some(Err(format!("IngressClass {} refers to IngressClassParams {} which does not exist", class.name_any(), p.name)));
    };
    if let Some(selector) = &params.spec.namespace_selector {
        let ns = ing.namespace().unwrap_or_default();
        if !selects(selector, &objects.namespace_labels(&ns)) {
            return Some(Err(format!("namespace {ns} is not allowed by the namespaceSelector of IngressClassParams {}", p.name)));
        }
    }
    Some(Ok(params.spec.clone()))
}

/// The group an Ingress asks to be in: its IngressClassParams' group, else its
/// `group.name` annotation, else its own implicit group.
pub fn group_of(objects: &impl ClusterObjects, filter: &ClassFilter, ing: &Ingress) -> Result<GroupId, String> {
    if let Some(Ok(IngressClassParamsSpec { group: Some(g), .. })) = class_params(objects, filter, ing) {
        return parse_group_name(&g.name).map(GroupId::Explicit).map_err(|e| format!("IngressClassParams spec.group.name: {e}"));
    }
    match ing.annotations().get(&format!("{PREFIX}group.name")) {
        Some(name) => parse_group_name(name.trim()).map(GroupId::Explicit).map_err(|e| format!("annotation {PREFIX}group.name: {e}")),
        None => Ok(GroupId::Implicit { namespace: ing.namespace().unwrap_or_default(), name: ing.name_any() }),
    }
}
