//! Ingress paths as ALB rule conditions, in LBC's order.

use k8s_openapi::api::networking::v1::HTTPIngressPath;

use crate::model::Condition;

/// LBC's order: Exact paths first, then Prefix paths longest first, then
/// ImplementationSpecific (or unset) in their written order.
pub fn sorted(paths: &[HTTPIngressPath]) -> Vec<&HTTPIngressPath> {
    let kind = |p: &HTTPIngressPath| match p.path_type.as_str() {
        "Exact" => 0,
        "Prefix" => 1,
        _ => 2,
    };
    let mut sorted: Vec<&HTTPIngressPath> = paths.iter().collect();
    sorted.sort_by(|a, b| {
        kind(a).cmp(&kind(b)).then_with(|| {
            if kind(a) == 1 {
                let len = |p: &HTTPIngressPath| p.path.as_deref().unwrap_or("").len();
                len(b).cmp(&len(a))
            } else {
                std::cmp::Ordering::Equal
            }
        })
    });
    sorted
}

/// Host and path of one Ingress path as ALB conditions (host-header, then path-pattern).
/// `extra` are the `conditions.${backend}` annotation's: their hosts and paths join the
/// rule's own, the other fields become conditions of their own (as LBC merges them).
pub fn conditions(host: Option<&str>, path: &HTTPIngressPath, extra: Vec<Condition>, regex: bool) -> Result<Vec<Condition>, String> {
    let mut out = Vec::new();
    let mut hosts: Vec<String> = host.filter(|h| !h.is_empty()).map(str::to_string).into_iter().collect();
    let mut paths = Vec::new();
    for c in extra {
        match c {
            Condition::HostHeader(v) => hosts.extend(v),
            Condition::PathPattern(v) => paths.extend(v),
            other => out.push(other),
        }
    }
    if !hosts.is_empty() {
        out.push(Condition::HostHeader(hosts));
    }
    let implementation_specific = !matches!(path.path_type.as_str(), "Exact" | "Prefix");
    if regex
        && implementation_specific
        && let Some(p) = path.path.as_deref().filter(|p| !p.is_empty())
    {
        out.push(Condition::PathRegex(vec![p.to_string()]));
    } else if let Some(p) = path.path.as_deref().filter(|p| !p.is_empty()) {
        let patterns = match path.path_type.as_str() {
            "Exact" => {
                if p.contains(['*', '?']) {
                    return Err(format!("Exact path {p:?} must not contain wildcards"));
                }
                vec![p.to_string()]
            }
            "Prefix" if p == "/" => vec!["/*".to_string()],
            "Prefix" => {
                if p.contains(['*', '?']) {
                    return Err(format!("Prefix path {p:?} must not contain wildcards"));
                }
                let p = p.trim_end_matches('/');
                vec![p.to_string(), format!("{p}/*")]
            }
            _ => vec![p.to_string()],
        };
        paths.splice(0..0, patterns);
    }
    if !paths.is_empty() {
        out.push(Condition::PathPattern(paths));
    }
    if out.is_empty() {
        out.push(Condition::PathPattern(vec!["/*".to_string()]));
    }
    Ok(out)
}
