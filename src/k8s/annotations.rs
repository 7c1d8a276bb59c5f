//! `alb.ingress.kubernetes.io/*` annotations of one Ingress, parsed and validated.
//! Every error names the annotation and the reason, worded for a Warning Event.

use std::collections::BTreeMap;

use crate::model::{Protocol, Scheme, Tags, TargetType};

pub const PREFIX: &str = "alb.ingress.kubernetes.io/";

/// What one Ingress asks for through annotations, with LBC's defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressConfig {
    pub scheme: Scheme,
    pub target_type: TargetType,
    pub load_balancer_name: Option<String>,
    pub tags: Tags,
    pub listen_ports: Vec<(Protocol, i32)>,
    pub inbound_cidrs: Vec<String>,
    pub healthcheck_path: String,
    pub success_codes: String,
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
    annotations: &'a BTreeMap<String, String>,
    errors: Vec<AnnotationError>,
}

impl<'a> Reader<'a> {
    fn raw(&self, key: &str) -> Option<&'a str> {
        self.annotations
            .get(&format!("{PREFIX}{key}"))
            .map(|v| v.trim())
    }

    fn fail(&mut self, key: &str, reason: String) {
        self.errors.push(AnnotationError {
            annotation: format!("{PREFIX}{key}"),
            reason,
        });
    }

    /// Parses `key` with `parse`; on error records it and returns `default`.
    fn get<T>(
        &mut self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.raw(key) {
            None => default,
            Some(v) => parse(v).unwrap_or_else(|reason| {
                self.fail(key, reason);
                default
            }),
        }
    }
}

pub fn parse(
    annotations: &BTreeMap<String, String>,
) -> Result<IngressConfig, Vec<AnnotationError>> {
    let mut r = Reader {
        annotations,
        errors: Vec::new(),
    };
    if r.raw("group.name").is_some() {
        r.fail("group.name", "IngressGroups are not supported by this version yet; remove the annotation or wait for group support".into());
    }
    let scheme = r.get("scheme", Scheme::Internal, |v| match v {
        "internal" => Ok(Scheme::Internal),
        "internet-facing" => Ok(Scheme::InternetFacing),
        _ => Err(format!(
            "unknown scheme {v:?}: must be \"internal\" or \"internet-facing\""
        )),
    });
    let target_type = r.get("target-type", TargetType::Ip, |v| match v {
        "ip" => Ok(TargetType::Ip),
        "instance" => {
            Err("target-type \"instance\" is not supported by this version yet; use \"ip\"".into())
        }
        _ => Err(format!(
            "unknown target-type {v:?}: must be \"ip\" or \"instance\""
        )),
    });
    let load_balancer_name = r.get("load-balancer-name", None, |v| parse_lb_name(v).map(Some));
    let tags = r.get("tags", Tags::new(), parse_tags);
    let listen_ports = r.get(
        "listen-ports",
        vec![(Protocol::Http, 80)],
        parse_listen_ports,
    );
    let inbound_cidrs = r.get("inbound-cidrs", vec!["0.0.0.0/0".to_string()], parse_cidrs);
    let healthcheck_path = r.get("healthcheck-path", "/".to_string(), |v| {
        if v.starts_with('/') {
            Ok(v.to_string())
        } else {
            Err(format!("health check path {v:?} must start with \"/\""))
        }
    });
    let success_codes = r.get("success-codes", "200".to_string(), parse_success_codes);
    if r.errors.is_empty() {
        Ok(IngressConfig {
            scheme,
            target_type,
            load_balancer_name,
            tags,
            listen_ports,
            inbound_cidrs,
            healthcheck_path,
            success_codes,
        })
    } else {
        Err(r.errors)
    }
}

fn parse_lb_name(v: &str) -> Result<String, String> {
    let ok_chars = v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if v.is_empty()
        || v.len() > 32
        || !ok_chars
        || v.starts_with('-')
        || v.ends_with('-')
        || v.starts_with("internal-")
    {
        return Err(format!(
            "invalid load balancer name {v:?}: at most 32 letters, digits and hyphens, not starting or ending with a hyphen, not starting with \"internal-\""
        ));
    }
    Ok(v.to_string())
}

/// `k1=v1,k2=v2`
fn parse_tags(v: &str) -> Result<Tags, String> {
    let mut tags = Tags::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, val) = pair
            .split_once('=')
            .ok_or_else(|| format!("tag {pair:?} is not in the form key=value"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("tag {pair:?} has an empty key"));
        }
        if k.starts_with("aws:")
            || k == crate::model::TAG_CLUSTER
            || k == crate::model::TAG_STACK
            || k == crate::model::TAG_RESOURCE
        {
            return Err(format!("tag key {k:?} is reserved"));
        }
        tags.insert(k.to_string(), val.trim().to_string());
    }
    Ok(tags)
}

/// `[{"HTTP": 80}, {"HTTP": 8080}]`
fn parse_listen_ports(v: &str) -> Result<Vec<(Protocol, i32)>, String> {
    let entries: Vec<BTreeMap<String, i64>> = serde_json::from_str(v)
        .map_err(|e| format!("not a JSON list of {{\"PROTOCOL\": port}} objects: {e}"))?;
    let mut ports = Vec::new();
    for entry in entries {
        for (proto, port) in entry {
            let protocol = match proto.as_str() {
                "HTTP" => Protocol::Http,
                "HTTPS" => {
                    return Err("HTTPS listeners are not supported by this version yet".into());
                }
                _ => return Err(format!("unknown protocol {proto:?}: must be HTTP or HTTPS")),
            };
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
    let cidrs: Vec<String> = v
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    for c in &cidrs {
        let (ip, len) = c
            .split_once('/')
            .ok_or_else(|| format!("{c:?} is not a CIDR (address/length)"))?;
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

/// `200`, `200,302` or `200-299`.
fn parse_success_codes(v: &str) -> Result<String, String> {
    let valid = |s: &str| s.parse::<u16>().is_ok_and(|c| (200..=499).contains(&c));
    for part in v.split(',') {
        let ok = match part.split_once('-') {
            Some((a, b)) => valid(a) && valid(b),
            None => valid(part),
        };
        if !ok {
            return Err(format!(
                "{v:?} is not a list or range of HTTP codes between 200 and 499"
            ));
        }
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_lbc() {
        let c = parse(&BTreeMap::new()).unwrap();
        assert_eq!(c.scheme, Scheme::Internal);
        assert_eq!(c.listen_ports, vec![(Protocol::Http, 80)]);
        assert_eq!(c.inbound_cidrs, vec!["0.0.0.0/0"]);
        assert_eq!(c.healthcheck_path, "/");
        assert_eq!(c.success_codes, "200");
    }

    #[test]
    fn scheme_and_ports() {
        let c = parse(&ann(&[
            ("scheme", "internet-facing"),
            ("listen-ports", r#"[{"HTTP": 80}, {"HTTP": 8080}]"#),
        ]))
        .unwrap();
        assert_eq!(c.scheme, Scheme::InternetFacing);
        assert_eq!(
            c.listen_ports,
            vec![(Protocol::Http, 80), (Protocol::Http, 8080)]
        );
    }

    #[test]
    fn every_bad_annotation_is_named() {
        let errs = parse(&ann(&[
            ("scheme", "public"),
            ("listen-ports", "[80]"),
            ("tags", "novalue"),
            ("inbound-cidrs", "10.0.0.0/33"),
        ]))
        .unwrap_err();
        let names: Vec<_> = errs.iter().map(|e| e.annotation.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "alb.ingress.kubernetes.io/scheme",
                "alb.ingress.kubernetes.io/tags",
                "alb.ingress.kubernetes.io/listen-ports",
                "alb.ingress.kubernetes.io/inbound-cidrs"
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
    fn load_balancer_name_rules() {
        assert!(parse(&ann(&[("load-balancer-name", "my-alb")])).is_ok());
        assert!(parse(&ann(&[("load-balancer-name", "-bad")])).is_err());
        assert!(parse(&ann(&[("load-balancer-name", &"x".repeat(33))])).is_err());
    }

    #[test]
    fn success_codes_forms() {
        for ok in ["200", "200,302", "200-299"] {
            assert!(parse(&ann(&[("success-codes", ok)])).is_ok(), "{ok}");
        }
        for bad in ["abc", "600", "200-"] {
            assert!(parse(&ann(&[("success-codes", bad)])).is_err(), "{bad}");
        }
    }
}
