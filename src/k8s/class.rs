//! Which Ingresses belong to this controller.

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

#[derive(Clone, Debug)]
pub struct ClassFilter {
    /// IngressClass `spec.controller` we serve, `ingress.k8s.aws/alb`.
    pub controller: String,
    /// Value of the legacy `kubernetes.io/ingress.class` annotation we serve, `alb`.
    pub legacy_class: String,
}

impl ClassFilter {
    /// The IngressClass of ours an Ingress uses, by name or as the default class; `None`
    /// for Ingresses using the legacy annotation or another controller's class.
    pub fn class_of<'a>(&self, ing: &Ingress, classes: impl IntoIterator<Item = &'a IngressClass>) -> Option<&'a IngressClass> {
        let ours = |c: &IngressClass| c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(self.controller.as_str());
        let mut classes = classes.into_iter();
        if ing.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(LEGACY_CLASS_ANNOTATION)) {
            return None;
        }
        match ing.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref()) {
            Some(name) => classes.find(|c| c.metadata.name.as_deref() == Some(name) && ours(c)),
            None => classes.find(|c| {
                ours(c) && c.metadata.annotations.as_ref().and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION)).map(String::as_str) == Some("true")
            }),
        }
    }

    /// An Ingress is ours when its IngressClass names our controller, when it carries the
    /// legacy class annotation with our class, or when it names no class and the cluster's
    /// default IngressClass is ours.
    pub fn is_ours<'a>(&self, ing: &Ingress, classes: impl IntoIterator<Item = &'a IngressClass>) -> bool {
        // The legacy annotation, when present, decides (it takes priority in LBC too).
        match ing.metadata.annotations.as_ref().and_then(|a| a.get(LEGACY_CLASS_ANNOTATION)) {
            Some(legacy) => legacy == &self.legacy_class,
            None => self.class_of(ing, classes).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, controller: &str, default: bool) -> IngressClass {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": if default { serde_json::json!({DEFAULT_CLASS_ANNOTATION: "true"}) } else { serde_json::json!({}) }},
            "spec": {"controller": controller}
        }))
        .unwrap()
    }

    fn ing(class: Option<&str>, legacy: Option<&str>) -> Ingress {
        let mut v = serde_json::json!({"metadata": {"name": "i", "namespace": "n", "annotations": {}}, "spec": {}});
        if let Some(c) = class {
            v["spec"]["ingressClassName"] = c.into();
        }
        if let Some(l) = legacy {
            v["metadata"]["annotations"][LEGACY_CLASS_ANNOTATION] = l.into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn class_matching() {
        let f = ClassFilter { controller: "ingress.k8s.aws/alb".into(), legacy_class: "alb".into() };
        let classes = [class("alb", "ingress.k8s.aws/alb", false), class("nginx", "k8s.io/ingress-nginx", true)];
        assert!(f.is_ours(&ing(Some("alb"), None), &classes));
        assert!(!f.is_ours(&ing(Some("nginx"), None), &classes));
        assert!(!f.is_ours(&ing(Some("missing"), None), &classes));
        assert!(f.is_ours(&ing(None, Some("alb")), &classes));
        assert!(!f.is_ours(&ing(None, Some("nginx")), &classes));
        assert!(!f.is_ours(&ing(None, None), &classes));
        let with_default = [class("alb", "ingress.k8s.aws/alb", true)];
        assert!(f.is_ours(&ing(None, None), &with_default));
    }
}
