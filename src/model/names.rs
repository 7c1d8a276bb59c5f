//! AWS resource names, shaped as LBC shapes them so the console looks the same.

use sha2::{Digest, Sha256};

use super::GroupId;

fn alnum(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).collect()
}

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

fn trunc(s: &str, n: usize) -> &str {
    // The input is ASCII after `alnum`, so byte slicing is char slicing.
    &s[..s.len().min(n)]
}

fn group_name(group: &GroupId, uuid: &str) -> String {
    match group {
        GroupId::Explicit(name) => format!("k8s-{}-{}", trunc(&alnum(name), 17), trunc(uuid, 10)),
        GroupId::Implicit { namespace, name } | GroupId::Gateway { namespace, name, .. } => {
            format!("k8s-{}-{}-{}", trunc(&alnum(namespace), 8), trunc(&alnum(name), 8), trunc(uuid, 10))
        }
    }
}

/// `k8s-<namespace>-<name>-<hash>`, at most 32 characters. A Gateway's hash is of its UID,
/// as LBC's Gateway controller makes it.
pub fn load_balancer(cluster: &str, group: &GroupId, scheme: &str) -> String {
    match group {
        GroupId::Gateway { uid, .. } => group_name(group, &hash(&[cluster, uid, scheme])),
        _ => group_name(group, &hash(&[cluster, &group.to_string(), scheme])),
    }
}

pub fn security_group(cluster: &str, group: &GroupId) -> String {
    match group {
        GroupId::Gateway { namespace, name, uid } => group_name(group, &hash(&[cluster, name, namespace, uid])),
        _ => group_name(group, &hash(&[cluster, &group.to_string()])),
    }
}

/// The cluster's shared backend security group, `k8s-traffic-<cluster>-<hash>`, exactly
/// as LBC names it (so an LBC cluster's group is the same group).
pub fn backend_security_group(cluster: &str) -> String {
    format!("k8s-traffic-{}-{}", trunc(&alnum(cluster), 232), trunc(&hash(&[cluster]), 10))
}

/// What a target group name is made of: LBC's fields, in LBC's order.
pub struct TargetGroupNameParts<'a> {
    pub cluster: &'a str,
    pub group: &'a GroupId,
    pub ingress_namespace: &'a str,
    pub ingress_name: &'a str,
    pub svc_namespace: &'a str,
    pub svc_name: &'a str,
    pub svc_uid: &'a str,
    /// The Ingress backend's port, as written (number or name).
    pub svc_port: &'a str,
    pub tg_port: i32,
    pub target_type: &'a str,
    pub protocol: &'a str,
    pub protocol_version: &'a str,
}

/// `k8s-<svc namespace>-<svc name>-<hash>`, the name LBC gives the same target group.
/// (Target groups are matched by their `ingress.k8s.aws/resource` tag, not by name: the
/// name only has to be unique and stable.)
pub fn target_group(p: &TargetGroupNameParts) -> String {
    let uuid = hash(&[
        p.cluster,
        &p.group.to_string(),
        p.ingress_namespace,
        p.ingress_name,
        p.svc_uid,
        p.svc_port,
        &p.tg_port.to_string(),
        p.target_type,
        p.protocol,
        p.protocol_version,
    ]);
    format!("k8s-{}-{}-{}", trunc(&alnum(p.svc_namespace), 8), trunc(&alnum(p.svc_name), 8), trunc(&uuid, 10))
}

/// What a Gateway's target group name is made of: LBC's Gateway fields, in its order.
pub struct GatewayTargetGroupNameParts<'a> {
    pub cluster: &'a str,
    pub gateway: &'a super::ObjKey,
    pub route: &'a super::ObjKey,
    /// `HTTPRoute` or `GRPCRoute`.
    pub route_kind: &'a str,
    pub service: &'a super::ObjKey,
    /// The backendRef's port for `ip` targets, the target group's port for `instance` ones.
    pub port: &'a str,
    pub target_type: &'a str,
    pub protocol: &'a str,
    pub protocol_version: &'a str,
}

/// `k8s-<route namespace>-<route name>-<hash>`, the name LBC's Gateway controller gives it.
pub fn gateway_target_group(p: &GatewayTargetGroupNameParts) -> String {
    let uuid = hash(&[
        p.cluster,
        &p.gateway.namespace,
        &p.gateway.name,
        &p.route.namespace,
        &p.route.name,
        p.route_kind,
        &p.service.namespace,
        &p.service.name,
        p.port,
        p.target_type,
        p.protocol,
        p.protocol_version,
    ]);
    format!("k8s-{}-{}-{}", trunc(&alnum(&p.route.namespace), 8), trunc(&alnum(&p.route.name), 8), trunc(&uuid, 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_security_group_is_named_as_lbc_names_it() {
        // sha256("my-cluster") starts 4cbfcec96c; LBC drops non-alphanumerics from the cluster name.
        assert_eq!(backend_security_group("my-cluster"), "k8s-traffic-mycluster-4cbfcec96c");
        assert_eq!(backend_security_group(&"x".repeat(300)).len(), "k8s-traffic-".len() + 232 + 1 + 10);
    }

    #[test]
    fn names_fit_in_32_characters() {
        let g = GroupId::Implicit { namespace: "a-very-long-namespace".into(), name: "and-a-very-long-name".into() };
        let n = load_balancer("c", &g, "internal");
        assert!(n.len() <= 32, "{n}");
        assert!(n.starts_with("k8s-averylon-andavery-"), "{n}");
        let e = GroupId::Explicit("my-group.with.dots-and-more-text".into());
        let n = load_balancer("c", &e, "internal");
        assert!(n.starts_with("k8s-mygroupwithdotsan-") && n.len() <= 32, "{n}");
    }

    #[test]
    fn names_depend_on_cluster_and_scheme() {
        let g = GroupId::Implicit { namespace: "ns".into(), name: "web".into() };
        assert_ne!(load_balancer("a", &g, "internal"), load_balancer("b", &g, "internal"));
        assert_ne!(load_balancer("a", &g, "internal"), load_balancer("a", &g, "internet-facing"));
        assert_eq!(load_balancer("a", &g, "internal"), load_balancer("a", &g, "internal"));
    }

    #[test]
    fn target_group_names_are_per_ingress_and_fit() {
        let g = GroupId::Explicit("shop".into());
        let parts = |ingress| TargetGroupNameParts {
            cluster: "c",
            group: &g,
            ingress_namespace: "a-very-long-namespace",
            ingress_name: ingress,
            svc_namespace: "a-very-long-namespace",
            svc_name: "web-frontend",
            svc_uid: "0b5c6d1e-uid",
            svc_port: "80",
            tg_port: 8080,
            target_type: "ip",
            protocol: "HTTP",
            protocol_version: "HTTP1",
        };
        let (a, b) = (target_group(&parts("a")), target_group(&parts("b")));
        assert!(a.starts_with("k8s-averylon-webfront-") && a.len() <= 32, "{a}");
        assert_ne!(a, b, "one target group per Ingress");
        assert_eq!(a, target_group(&parts("a")), "stable");
    }
}
