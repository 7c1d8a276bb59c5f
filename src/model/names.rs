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
        GroupId::Implicit { namespace, name } => {
            format!("k8s-{}-{}-{}", trunc(&alnum(namespace), 8), trunc(&alnum(name), 8), trunc(uuid, 10))
        }
    }
}

/// `k8s-<namespace>-<name>-<hash>`, at most 32 characters.
pub fn load_balancer(cluster: &str, group: &GroupId, scheme: &str) -> String {
    group_name(group, &hash(&[cluster, &group.to_string(), scheme]))
}

pub fn security_group(cluster: &str, group: &GroupId) -> String {
    group_name(group, &hash(&[cluster, &group.to_string()]))
}

/// Target group name; every field that cannot change in place is in the hash, so a
/// change of any of them yields a new target group.
#[allow(clippy::too_many_arguments)]
pub fn target_group(
    cluster: &str,
    group: &GroupId,
    svc_namespace: &str,
    svc_name: &str,
    svc_port: &str,
    tg_port: i32,
    target_type: &str,
    protocol: &str,
    protocol_version: &str,
) -> String {
    let uuid = hash(&[
        cluster,
        &group.to_string(),
        svc_namespace,
        svc_name,
        svc_port,
        &tg_port.to_string(),
        target_type,
        protocol,
        protocol_version,
    ]);
    format!("k8s-{}-{}-{}", trunc(&alnum(svc_namespace), 8), trunc(&alnum(svc_name), 8), trunc(&uuid, 10))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
