//! `alb.ingress.kubernetes.io/*` annotations, parsed and validated. Every error names
//! the annotation and the reason, worded for a Warning Event.
//!
//! Two scopes, as in LBC: load-balancer settings come from the Ingress only
//! (`IngressConfig`); target-group settings come from the Ingress overlaid by the
//! backend Service's annotations (`BackendConfig`), the Service winning.

use std::collections::BTreeMap;

use crate::model::{HealthCheck, Protocol, Scheme, Tags, TargetType};

pub const PREFIX: &str = "alb.ingress.kubernetes.io/";

/// What one Ingress asks for. Settings that are "exclusive" in an IngressGroup stay
/// `None` when not given, so the group can tell a conflict from a default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressConfig {
    pub group_name: Option<String>,
    pub group_order: i64,
    pub scheme: Option<Scheme>,
    pub ip_address_type: Option<String>,
    pub load_balancer_name: Option<String>,
    pub subnets: Option<Vec<String>>,
    pub inbound_cidrs: Option<Vec<String>>,
    pub ssl_redirect: Option<i32>,
    pub ssl_policy: Option<String>,
    /// Merged across a group.
    pub tags: Tags,
    /// Merged across a group; each Ingress's rules go to its own ports.
    pub listen_ports: Option<Vec<(Protocol, i32)>>,
    /// Merged across a group; the first is the listener's default certificate.
    pub certificate_arns: Vec<String>,
}

/// Target group settings for one backend: Ingress annotations overlaid by the Service's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    pub target_type: TargetType,
    pub protocol: Protocol,
    pub protocol_version: String,
    pub health_check: HealthCheck,
}

/// One bad annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationError {
    pub annotation: String,
    pub reason: String,
}

impl std::fmt::Display for AnnotationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "annotation {}: {}", self.annotation, self.reason)
    }
}

struct Reader<'a> {
    layers: Vec<&'a BTreeMap<String, String>>,
    errors: Vec<AnnotationError>,
}

impl<'a> Reader<'a> {
    /// Later layers win (a Service's annotations over its Ingress's).
    fn raw(&self, key: &str) -> Option<&'a str> {
        let full = format!("{PREFIX}{key}");
        self.layers.iter().rev().find_map(|l| l.get(&full)).map(|v| v.trim())
    }

    fn fail(&mut self, key: &str, reason: String) {
        self.errors.push(AnnotationError { annotation: format!("{PREFIX}{key}"), reason });
    }

    /// Parses `key` with `parse`; on error records it and returns `default`.
    fn get<T>(&mut self, key: &str, default: T, parse: impl FnOnce(&str) -> Result<T, String>) -> T {
        match self.raw(key) {
            None => default,
            Some(v) => parse(v).unwrap_or_else(|reason| {
                self.fail(key, reason);
                default
            }),
        }
    }

    fn opt<T>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        self.get(key, None, |v| parse(v).map(Some))
    }

    fn int(&mut self, key: &str, default: i32, min: i32, max: i32) -> i32 {
        self.get(key, default, |v| match v.parse::<i32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!("{v:?} must be an integer between {min} and {max}")),
        })
    }

    fn done<T>(self, value: T) -> Result<T, Vec<AnnotationError>> {
        if self.errors.is_empty() { Ok(value) } else { Err(self.errors) }
    }
}

pub fn parse(annotations: &BTreeMap<String, String>) -> Result<IngressConfig, Vec<AnnotationError>> {
    let mut r = Reader { layers: vec![annotations], errors: Vec::new() };
    let group_name = r.opt("group.name", parse_group_name);
    let group_order = r.get("group.order", 0, |v| match v.parse::<i64>() {
        Ok(n) if (-1000..=1000).contains(&n) => Ok(n),
        _ => Err(format!("group order {v:?} must be an integer between -1000 and 1000")),
    });
    let scheme = r.opt("scheme", |v| match v {
        "internal" => Ok(Scheme::Internal),
        "internet-facing" => Ok(Scheme::InternetFacing),
        _ => Err(format!("unknown scheme {v:?}: must be \"internal\" or \"internet-facing\"")),
    });
    let ip_address_type = r.opt("ip-address-type", |v| match v {
        "ipv4" | "dualstack" => Ok(v.to_string()),
        _ => Err(format!("unknown IP address type {v:?}: must be \"ipv4\" or \"dualstack\"")),
    });
    let load_balancer_name = r.opt("load-balancer-name", parse_lb_name);
    let subnets = r.opt("subnets", |v| {
        let list = parse_list(v);
        if list.is_empty() { Err("no subnet given".into()) } else { Ok(list) }
    });
    let inbound_cidrs = r.opt("inbound-cidrs", parse_cidrs);
    let ssl_redirect = r.opt("ssl-redirect", |v| match v.parse::<i32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p),
        _ => Err(format!("{v:?} is not a port number")),
    });
    let ssl_policy = r.opt("ssl-policy", |v| if v.is_empty() { Err("empty SSL policy".into()) } else { Ok(v.to_string()) });
    let tags = r.get("tags", Tags::new(), parse_tags);
    let listen_ports = r.opt("listen-ports", parse_listen_ports);
    let certificate_arns = r.get("certificate-arn", Vec::new(), |v| {
        let arns = parse_list(v);
        match arns.iter().find(|a| !a.starts_with("arn:")) {
            Some(bad) => Err(format!("{bad:?} is not a certificate ARN")),
            None => Ok(arns),
        }
    });
    r.done(IngressConfig {
        group_name,
        group_order,
        scheme,
        ip_address_type,
        load_balancer_name,
        subnets,
        inbound_cidrs,
        ssl_redirect,
        ssl_policy,
        tags,
        listen_ports,
        certificate_arns,
    })
}

/// Target group settings of one backend Service, with LBC's defaults (gRPC ones for GRPC).
pub fn parse_backend(
    ingress: &BTreeMap<String, String>,
    service: &BTreeMap<String, String>,
) -> Result<BackendConfig, Vec<AnnotationError>> {
    let mut r = Reader { layers: vec![ingress, service], errors: Vec::new() };
    let target_type = r.get("target-type", TargetType::Ip, |v| match v {
        "ip" => Ok(TargetType::Ip),
        "instance" => Err("target-type \"instance\" is not supported by this version yet; use \"ip\"".into()),
        _ => Err(format!("unknown target-type {v:?}: must be \"ip\" or \"instance\"")),
    });
    let protocol = r.get("backend-protocol", Protocol::Http, parse_protocol);
    let protocol_version = r.get("backend-protocol-version", "HTTP1".to_string(), |v| match v {
        "HTTP1" | "HTTP2" | "GRPC" => Ok(v.to_string()),
        _ => Err(format!("unknown protocol version {v:?}: must be HTTP1, HTTP2 or GRPC")),
    });
    let grpc = protocol_version == "GRPC";
    let hc_protocol = r.get("healthcheck-protocol", protocol, parse_protocol);
    let hc_port = r.get("healthcheck-port", "traffic-port".to_string(), |v| match v {
        "traffic-port" => Ok(v.to_string()),
        _ if v.parse::<u16>().is_ok_and(|p| p > 0) => Ok(v.to_string()),
        _ => Err(format!("{v:?} must be a port number or \"traffic-port\"")),
    });
    let default_path = if grpc { "/AWS.ALB/healthcheck" } else { "/" };
    let path = r.get("healthcheck-path", default_path.to_string(), |v| {
        if v.starts_with('/') { Ok(v.to_string()) } else { Err(format!("health check path {v:?} must start with \"/\"")) }
    });
    let interval_seconds = r.int("healthcheck-interval-seconds", 15, 5, 300);
    let timeout_seconds = r.int("healthcheck-timeout-seconds", 5, 2, 120);
    let healthy_threshold = r.int("healthy-threshold-count", 2, 2, 10);
    let unhealthy_threshold = r.int("unhealthy-threshold-count", 2, 2, 10);
    let default_codes = if grpc { "12" } else { "200" };
    let success_codes =
        r.get("success-codes", default_codes.to_string(), |v| if grpc { parse_grpc_codes(v) } else { parse_success_codes(v) });
    if timeout_seconds >= interval_seconds {
        r.fail("healthcheck-timeout-seconds", format!("timeout {timeout_seconds}s must be shorter than the interval {interval_seconds}s"));
    }
    r.done(BackendConfig {
        target_type,
        protocol,
        protocol_version,
        health_check: HealthCheck {
            protocol: hc_protocol,
            port: hc_port,
            path,
            interval_seconds,
            timeout_seconds,
            healthy_threshold,
            unhealthy_threshold,
            success_codes,
        },
    })
}

fn parse_protocol(v: &str) -> Result<Protocol, String> {
    match v {
        "HTTP" => Ok(Protocol::Http),
        "HTTPS" => Ok(Protocol::Https),
        _ => Err(format!("unknown protocol {v:?}: must be HTTP or HTTPS")),
    }
}

/// `a, b,c`
fn parse_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// LBC's rule: lower-case alphanumerics, `-` and `.`, alphanumeric at both ends, ≤ 63.
pub fn parse_group_name(v: &str) -> Result<String, String> {
    let ok_chars = v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if v.is_empty() || v.len() > 63 || !ok_chars || !ends_ok(v.chars().next()) || !ends_ok(v.chars().last()) {
        return Err(format!(
            "invalid group name {v:?}: at most 63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(v.to_string())
}

fn parse_lb_name(v: &str) -> Result<String, String> {
    let ok_chars = v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if v.is_empty() || v.len() > 32 || !ok_chars || v.starts_with('-') || v.ends_with('-') || v.starts_with("internal-") {
        return Err(format!(
            "invalid load balancer name {v:?}: at most 32 letters, digits and hyphens, not starting or ending with a hyphen, not starting with \"internal-\""
        ));
    }
    Ok(v.to_string())
}

/// `k1=v1,k2=v2`
fn parse_tags(v: &str) -> Result<Tags, String> {
    let mut tags = Tags::new();
    for pair in parse_list(v) {
        let (k, val) = pair.split_once('=').ok_or_else(|| format!("tag {pair:?} is not in the form key=value"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("tag {pair:?} has an empty key"));
        }
        if k.starts_with("aws:") || k == crate::model::TAG_CLUSTER || k == crate::model::TAG_STACK || k == crate::model::TAG_RESOURCE {
            return Err(format!("tag key {k:?} is reserved"));
        }
        tags.insert(k.to_string(), val.trim().to_string());
    }
    Ok(tags)
}

/// `[{"HTTP": 80}, {"HTTPS": 443}]`
fn parse_listen_ports(v: &str) -> Result<Vec<(Protocol, i32)>, String> {
    let entries: Vec<BTreeMap<String, i64>> =
        serde_json::from_str(v).map_err(|e| format!("not a JSON list of {{\"PROTOCOL\": port}} objects: {e}"))?;
    let mut ports = Vec::new();
    for entry in entries {
        for (proto, port) in entry {
            let protocol = parse_protocol(&proto)?;
            if !(1..=65535).contains(&port) {
                return Err(format!("port {port} is out of range 1-65535"));
            }
            if ports.iter().any(|&(_, p)| p == port as i32) {
                return Err(format!("port {port} is listed twice"));
            }
            ports.push((protocol, port as i32));
        }
    }
    if ports.is_empty() {
        return Err("no listen port given".into());
    }
    Ok(ports)
}

fn parse_cidrs(v: &str) -> Result<Vec<String>, String> {
    let cidrs = parse_list(v);
    for c in &cidrs {
        let (ip, len) = c.split_once('/').ok_or_else(|| format!("{c:?} is not a CIDR (address/length)"))?;
        let ok = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => len.parse::<u8>().is_ok_and(|l| l <= 32),
            Ok(std::net::IpAddr::V6(_)) => len.parse::<u8>().is_ok_and(|l| l <= 128),
            Err(_) => false,
        };
        if !ok {
            return Err(format!("{c:?} is not a valid CIDR"));
        }
    }
    if cidrs.is_empty() {
        return Err("no CIDR given".into());
    }
    Ok(cidrs)
}

fn codes(v: &str, min: u16, max: u16, what: &str) -> Result<String, String> {
    let valid = |s: &str| s.parse::<u16>().is_ok_and(|c| (min..=max).contains(&c));
    for part in v.split(',') {
        let ok = match part.split_once('-') {
            Some((a, b)) => valid(a) && valid(b),
            None => valid(part),
        };
        if !ok {
            return Err(format!("{v:?} is not a list or range of {what} between {min} and {max}"));
        }
    }
    Ok(v.to_string())
}

/// `200`, `200,302` or `200-299`.
fn parse_success_codes(v: &str) -> Result<String, String> {
    codes(v, 200, 499, "HTTP codes")
}

/// gRPC status codes, `0`-`99`: `12`, `0,12`, `0-99`.
fn parse_grpc_codes(v: &str) -> Result<String, String> {
    codes(v, 0, 99, "gRPC codes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string())).collect()
    }

    #[test]
    fn unset_exclusive_settings_stay_unset() {
        let c = parse(&BTreeMap::new()).unwrap();
        assert_eq!((c.scheme, c.listen_ports, c.inbound_cidrs, c.ssl_redirect), (None, None, None, None));
        assert_eq!((c.group_name, c.group_order), (None, 0));
    }

    #[test]
    fn backend_defaults_match_lbc() {
        let b = parse_backend(&BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert_eq!((b.target_type, b.protocol, b.protocol_version.as_str()), (TargetType::Ip, Protocol::Http, "HTTP1"));
        let h = &b.health_check;
        assert_eq!((h.port.as_str(), h.path.as_str(), h.success_codes.as_str()), ("traffic-port", "/", "200"));
        assert_eq!((h.interval_seconds, h.timeout_seconds, h.healthy_threshold, h.unhealthy_threshold), (15, 5, 2, 2));
    }

    #[test]
    fn grpc_backends_get_grpc_health_check_defaults() {
        let b = parse_backend(&ann(&[("backend-protocol-version", "GRPC")]), &BTreeMap::new()).unwrap();
        assert_eq!((b.health_check.path.as_str(), b.health_check.success_codes.as_str()), ("/AWS.ALB/healthcheck", "12"));
        assert!(parse_backend(&ann(&[("backend-protocol-version", "GRPC"), ("success-codes", "0-99")]), &BTreeMap::new()).is_ok());
        assert!(parse_backend(&ann(&[("backend-protocol-version", "GRPC"), ("success-codes", "200")]), &BTreeMap::new()).is_err());
    }

    #[test]
    fn service_annotations_override_ingress_annotations() {
        let ing = ann(&[("healthcheck-path", "/ing"), ("healthcheck-interval-seconds", "30")]);
        let svc = ann(&[("healthcheck-path", "/svc")]);
        let b = parse_backend(&ing, &svc).unwrap();
        assert_eq!((b.health_check.path.as_str(), b.health_check.interval_seconds), ("/svc", 30));
    }

    #[test]
    fn health_check_ranges() {
        for (k, v) in [("healthcheck-interval-seconds", "4"), ("healthy-threshold-count", "11"), ("healthcheck-port", "x")] {
            assert!(parse_backend(&ann(&[(k, v)]), &BTreeMap::new()).is_err(), "{k}={v}");
        }
        let e = parse_backend(&ann(&[("healthcheck-interval-seconds", "5"), ("healthcheck-timeout-seconds", "5")]), &BTreeMap::new());
        assert!(e.unwrap_err()[0].to_string().contains("shorter than the interval"));
    }

    #[test]
    fn scheme_ports_and_certificates() {
        let c = parse(&ann(&[
            ("scheme", "internet-facing"),
            ("listen-ports", r#"[{"HTTP": 80}, {"HTTPS": 443}]"#),
            ("certificate-arn", "arn:aws:acm:us-east-1:1:certificate/a, arn:aws:acm:us-east-1:1:certificate/b"),
            ("ssl-redirect", "443"),
        ]))
        .unwrap();
        assert_eq!(c.scheme, Some(Scheme::InternetFacing));
        assert_eq!(c.listen_ports, Some(vec![(Protocol::Http, 80), (Protocol::Https, 443)]));
        assert_eq!(c.certificate_arns.len(), 2);
        assert_eq!(c.ssl_redirect, Some(443));
        assert!(parse(&ann(&[("certificate-arn", "not-an-arn")])).is_err());
    }

    #[test]
    fn every_bad_annotation_is_named() {
        let errs = parse(&ann(&[("scheme", "public"), ("listen-ports", "[80]"), ("tags", "novalue"), ("inbound-cidrs", "10.0.0.0/33")]))
            .unwrap_err();
        let names: Vec<_> = errs.iter().map(|e| e.annotation.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "alb.ingress.kubernetes.io/scheme",
                "alb.ingress.kubernetes.io/inbound-cidrs",
                "alb.ingress.kubernetes.io/tags",
                "alb.ingress.kubernetes.io/listen-ports",
            ]
        );
        assert!(errs[0].to_string().contains("\"public\""), "{}", errs[0]);
    }

    #[test]
    fn tags_parse_and_reserved_keys_are_refused() {
        let c = parse(&ann(&[("tags", "team=web, env = prod")])).unwrap();
        assert_eq!(c.tags.get("env").map(String::as_str), Some("prod"));
        assert!(parse(&ann(&[("tags", "elbv2.k8s.aws/cluster=x")])).is_err());
    }

    #[test]
    fn group_name_and_order() {
        let c = parse(&ann(&[("group.name", "team.web-1"), ("group.order", "-5")])).unwrap();
        assert_eq!((c.group_name.as_deref(), c.group_order), (Some("team.web-1"), -5));
        for bad in ["Team", "-x", "x.", &"a".repeat(64)] {
            assert!(parse(&ann(&[("group.name", bad)])).is_err(), "{bad}");
        }
        assert!(parse(&ann(&[("group.order", "1001")])).is_err());
        assert!(parse(&ann(&[("group.order", "x")])).is_err());
    }

    #[test]
    fn load_balancer_name_rules() {
        assert!(parse(&ann(&[("load-balancer-name", "my-alb")])).is_ok());
        assert!(parse(&ann(&[("load-balancer-name", "-bad")])).is_err());
        assert!(parse(&ann(&[("load-balancer-name", &"x".repeat(33))])).is_err());
    }

    #[test]
    fn success_codes_forms() {
        for ok in ["200", "200,302", "200-299"] {
            assert!(parse_backend(&ann(&[("success-codes", ok)]), &BTreeMap::new()).is_ok(), "{ok}");
        }
        for bad in ["abc", "600", "200-"] {
            assert!(parse_backend(&ann(&[("success-codes", bad)]), &BTreeMap::new()).is_err(), "{bad}");
        }
    }
}
