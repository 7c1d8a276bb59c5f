//! `alb.ingress.kubernetes.io/*` annotations, parsed and validated. Every error names
//! the annotation and the reason, worded for a Warning Event.
//!
//! Two scopes, as in LBC: load-balancer settings come from the Ingress only
//! (`IngressConfig`); target-group settings come from the Ingress overlaid by the
//! backend Service's annotations (`BackendConfig`), the Service winning.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::k8s::params::IngressClassParamsSpec;
use crate::model::{Action, AuthSession, Condition, HealthCheck, Protocol, Scheme, Tags, TargetType};

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
    /// Subnets by tag (from IngressClassParams only): for each key, one of the values.
    pub subnet_tags: Option<BTreeMap<String, Vec<String>>>,
    /// From IngressClassParams: wins over every backend's `target-type`.
    pub target_type: Option<TargetType>,
    pub inbound_cidrs: Option<Vec<String>>,
    pub ssl_redirect: Option<i32>,
    pub ssl_policy: Option<String>,
    /// Merged across a group.
    pub tags: Tags,
    /// Merged across a group; each Ingress's rules go to its own ports.
    pub listen_ports: Option<Vec<(Protocol, i32)>>,
    /// Merged across a group; the first is the listener's default certificate.
    pub certificate_arns: Vec<String>,
    /// ImplementationSpecific paths are regular expressions.
    pub use_regex_path_match: bool,
    /// Exclusive in a group.
    pub load_balancer_attributes: Option<Tags>,
    /// Security groups (IDs or names) instead of the managed one. Exclusive.
    pub security_groups: Option<Vec<String>>,
    pub manage_backend_security_group_rules: Option<bool>,
    /// `listener-attributes.${Protocol}-${Port}`, by port.
    pub listener_attributes: BTreeMap<i32, Tags>,
    /// `actions.${name}`: used by backends `{service: {name: ${name}, port: {name: use-annotation}}}`.
    pub actions: BTreeMap<String, ActionSpec>,
    /// `conditions.${name}`: extra conditions of the rules whose backend is named `${name}`.
    pub conditions: BTreeMap<String, Vec<Condition>>,
    /// Accepted but worth a Warning Event (e.g. a JSON key neither we nor LBC know).
    pub warnings: Vec<AnnotationError>,
}

/// An `actions.${name}` annotation. Forward targets still name Services, resolved by
/// the model into target groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionSpec {
    Fixed(Action),
    Forward { targets: Vec<(TargetRef, Option<i32>)>, stickiness_seconds: Option<i32> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetRef {
    /// A target group made outside Kubernetes.
    Arn(String),
    Service {
        name: String,
        port: String,
    },
}

/// Target group settings for one backend: Ingress annotations overlaid by the Service's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    pub target_type: TargetType,
    /// `instance` targets: only nodes with all these labels.
    pub node_labels: Tags,
    pub attributes: Tags,
    pub auth: Option<AuthConfig>,
    pub protocol: Protocol,
    pub protocol_version: String,
    pub health_check: HealthCheck,
    /// `tags` of the Ingress overlaid key by key by the Service's (the Service wins), as
    /// LBC tags target groups.
    pub tags: Tags,
    /// Accepted but worth a Warning Event.
    pub warnings: Vec<AnnotationError>,
}

/// `auth-type` oidc or cognito, before the client secret is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    pub idp: AuthIdp,
    pub session: AuthSession,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthIdp {
    /// Client ID and secret come from the Secret `secret_name` (keys clientID, clientSecret).
    Oidc {
        issuer: String,
        authorization_endpoint: String,
        token_endpoint: String,
        user_info_endpoint: String,
        secret_name: String,
    },
    Cognito {
        user_pool_arn: String,
        user_pool_client_id: String,
        user_pool_domain: String,
    },
}

// The JSON annotations' shapes, with LBC's spellings (its Go struct tags). Keys are
// matched case-insensitively (see `decode_json`), so `sourceIpConfig` or `Values` work too.

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OidcJson {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    user_info_endpoint: String,
    secret_name: String,
    #[serde(default)]
    authentication_request_extra_params: BTreeMap<String, String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CognitoJson {
    #[serde(rename = "userPoolARN")]
    user_pool_arn: String,
    #[serde(rename = "userPoolClientID")]
    user_pool_client_id: String,
    user_pool_domain: String,
    #[serde(default)]
    authentication_request_extra_params: BTreeMap<String, String>,
}

/// Decodes a JSON annotation as LBC does with Go's encoding/json: object keys match the
/// fields of `T` case-insensitively (an exact match first) and unknown keys are ignored.
/// Returns the ignored keys (as paths, e.g. `[0].sourceIPConfig.value`) to warn about.
fn decode_json<T: DeserializeOwned + JsonSchema>(v: &str) -> Result<(T, Vec<String>), String> {
    let mut value: Value = serde_json::from_str(v).map_err(|e| e.to_string())?;
    let schema = schemars::schema_for!(T);
    let mut unknown = Vec::new();
    normalize_keys(&mut value, schema.as_value(), schema.as_value(), "", &mut unknown);
    let decoded = serde_json::from_value(value).map_err(|e| e.to_string())?;
    Ok((decoded, unknown))
}

/// The schemas `schema` stands for: itself, or what its `$ref` and `anyOf`/`oneOf`/`allOf`
/// (how an `Option` is described) point to.
fn branches<'a>(schema: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        if let Some(def) = root.get("$defs").and_then(|d| d.get(name)) {
            branches(def, root, out);
        }
        return;
    }
    out.push(schema);
    for key in ["anyOf", "oneOf", "allOf"] {
        for sub in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
            branches(sub, root, out);
        }
    }
}

/// Renames the object keys in `value` to the field names of `schema` (Go's case-insensitive
/// match) and drops the keys it has no field for, recording their paths in `unknown`.
fn normalize_keys(value: &mut Value, schema: &Value, root: &Value, path: &str, unknown: &mut Vec<String>) {
    let mut all = Vec::new();
    branches(schema, root, &mut all);
    match value {
        Value::Array(items) => {
            let Some(item_schema) = all.iter().find_map(|s| s.get("items")) else { return };
            for (i, item) in items.iter_mut().enumerate() {
                normalize_keys(item, item_schema, root, &format!("{path}[{i}]"), unknown);
            }
        }
        Value::Object(map) => {
            let at = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
            if let Some(fields) = all.iter().find_map(|s| s.get("properties").and_then(Value::as_object)) {
                let given = std::mem::take(map);
                // Exact spellings first, so they win over a key that only folds to the same field.
                let (exact, other): (Vec<_>, Vec<_>) = given.into_iter().partition(|(k, _)| fields.contains_key(k));
                for (k, mut v) in exact.into_iter().chain(other) {
                    let lower = k.to_lowercase();
                    let Some((field, field_schema)) = fields.iter().find(|(f, _)| **f == k || f.to_lowercase() == lower) else {
                        unknown.push(at(&k));
                        continue;
                    };
                    normalize_keys(&mut v, field_schema, root, &at(field), unknown);
                    map.entry(field.clone()).or_insert(v);
                }
            } else if let Some(values) = all.iter().find_map(|s| s.get("additionalProperties").filter(|a| a.is_object())) {
                // A free map (`authenticationRequestExtraParams`): its keys are data.
                for (k, v) in map.iter_mut() {
                    normalize_keys(v, values, root, &at(k), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Only the `auth-*` annotations of a backend (Ingress overlaid by Service).
pub fn parse_backend_auth(
    ingress: &BTreeMap<String, String>,
    service: &BTreeMap<String, String>,
) -> Result<Option<AuthConfig>, Vec<AnnotationError>> {
    let mut r = Reader::new(vec![ingress, service]);
    let auth = parse_auth(&mut r);
    // Unknown keys are reported with the backend's target group (`parse_backend`).
    r.done(auth)
}

/// The Secrets that `auth-idp-oidc` annotations name (unparsable ones skipped).
pub fn auth_secrets(layers: &[&BTreeMap<String, String>]) -> Vec<String> {
    layers
        .iter()
        .filter_map(|l| l.get(&format!("{PREFIX}auth-idp-oidc")))
        .filter_map(|v| decode_json::<OidcJson>(v).ok())
        .map(|(o, _)| o.secret_name)
        .collect()
}

fn parse_auth(r: &mut Reader) -> Option<AuthConfig> {
    let kind = r.get("auth-type", "none".to_string(), |v| match v {
        "none" | "oidc" | "cognito" => Ok(v.to_string()),
        _ => Err(format!("unknown auth type {v:?}: must be none, oidc or cognito")),
    });
    let on_unauthenticated_request = r.get("auth-on-unauthenticated-request", "authenticate".to_string(), |v| match v {
        "authenticate" | "allow" | "deny" => Ok(v.to_string()),
        _ => Err(format!("{v:?} must be authenticate, allow or deny")),
    });
    let scope = r.get("auth-scope", "openid".to_string(), |v| Ok(v.to_string()));
    let session_cookie_name = r.get("auth-session-cookie", "AWSELBAuthSessionCookie".to_string(), |v| Ok(v.to_string()));
    let session_timeout = r.get("auth-session-timeout", 604800, |v| match v.parse::<i64>() {
        Ok(n) if (1..=604800).contains(&n) => Ok(n),
        _ => Err(format!("{v:?} must be a number of seconds between 1 and 604800")),
    });
    let mut session = AuthSession { scope, session_cookie_name, session_timeout, on_unauthenticated_request, extra_params: Tags::new() };
    let idp = match kind.as_str() {
        "oidc" => {
            let o: Option<OidcJson> = r.json("auth-idp-oidc", "OIDC configuration");
            let Some(o) = o else {
                if r.raw("auth-idp-oidc").is_none() {
                    r.fail("auth-idp-oidc", "auth-type oidc needs this annotation".into());
                }
                return None;
            };
            session.extra_params = o.authentication_request_extra_params;
            AuthIdp::Oidc {
                issuer: o.issuer,
                authorization_endpoint: o.authorization_endpoint,
                token_endpoint: o.token_endpoint,
                user_info_endpoint: o.user_info_endpoint,
                secret_name: o.secret_name,
            }
        }
        "cognito" => {
            let c: Option<CognitoJson> = r.json("auth-idp-cognito", "Cognito configuration");
            let Some(c) = c else {
                if r.raw("auth-idp-cognito").is_none() {
                    r.fail("auth-idp-cognito", "auth-type cognito needs this annotation".into());
                }
                return None;
            };
            session.extra_params = c.authentication_request_extra_params;
            AuthIdp::Cognito {
                user_pool_arn: c.user_pool_arn,
                user_pool_client_id: c.user_pool_client_id,
                user_pool_domain: c.user_pool_domain,
            }
        }
        _ => return None,
    };
    Some(AuthConfig { idp, session })
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
    warnings: Vec<AnnotationError>,
}

impl<'a> Reader<'a> {
    fn new(layers: Vec<&'a BTreeMap<String, String>>) -> Self {
        Reader { layers, errors: Vec::new(), warnings: Vec::new() }
    }

    /// Keys LBC would silently ignore: accepted, but worth a Warning.
    fn warn_unknown(&mut self, key: &str, unknown: Vec<String>) {
        for k in unknown {
            self.warnings.push(AnnotationError { annotation: format!("{PREFIX}{key}"), reason: format!("unknown key {k:?} is ignored") });
        }
    }

    /// A JSON annotation, decoded as LBC decodes it (`decode_json`).
    fn json<T: DeserializeOwned + JsonSchema>(&mut self, key: &str, what: &str) -> Option<T> {
        let decoded = self.opt(key, |v| decode_json::<T>(v).map_err(|e| format!("not a valid {what}: {e}")))?;
        let (value, unknown) = decoded;
        self.warn_unknown(key, unknown);
        Some(value)
    }

    /// `true`/`false` as Go's strconv.ParseBool reads them (LBC's boolean annotations).
    fn bool(&mut self, key: &str) -> Option<bool> {
        self.opt(key, |v| match v {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!("{v:?} must be true or false")),
        })
    }

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

/// Settings of the Ingress's IngressClassParams replace what its annotations say.
pub fn apply_params(cfg: &mut IngressConfig, p: &IngressClassParamsSpec) -> Result<(), String> {
    let bad = |field: &str, e: String| format!("IngressClassParams spec.{field}: {e}");
    if let Some(g) = &p.group {
        cfg.group_name = Some(parse_group_name(&g.name).map_err(|e| bad("group.name", e))?);
    }
    if let Some(s) = &p.scheme {
        cfg.scheme = Some(match s.as_str() {
            "internal" => Scheme::Internal,
            "internet-facing" => Scheme::InternetFacing,
            _ => return Err(bad("scheme", format!("unknown scheme {s:?}"))),
        });
    }
    if let Some(t) = &p.ip_address_type {
        cfg.ip_address_type = Some(parse_ip_address_type(t).map_err(|e| bad("ipAddressType", e))?);
    }
    if let Some(n) = &p.load_balancer_name {
        cfg.load_balancer_name = Some(parse_lb_name(n).map_err(|e| bad("loadBalancerName", e))?);
    }
    if let Some(c) = &p.inbound_cidrs {
        cfg.inbound_cidrs = Some(parse_cidrs(&c.join(",")).map_err(|e| bad("inboundCIDRs", e))?);
    }
    if let Some(s) = &p.ssl_policy {
        cfg.ssl_policy = Some(s.clone());
    }
    if let Some(port) = &p.ssl_redirect_port {
        cfg.ssl_redirect = Some(port.parse().map_err(|_| bad("sslRedirectPort", format!("{port:?} is not a port")))?);
    }
    if let Some(arns) = &p.certificate_arn {
        cfg.certificate_arns = arns.clone();
    }
    if let Some(tags) = &p.tags {
        for t in tags {
            check_tag(&t.key, &t.value).map_err(|e| bad("tags", e))?;
        }
        cfg.tags.extend(tags.iter().map(|t| (t.key.clone(), t.value.clone())));
    }
    if let Some(s) = &p.subnets {
        if let Some(ids) = &s.ids {
            cfg.subnets = Some(ids.clone());
        }
        if let Some(tags) = &s.tags {
            cfg.subnet_tags = Some(tags.clone());
        }
    }
    if let Some(attrs) = &p.load_balancer_attributes {
        cfg.load_balancer_attributes = Some(attrs.iter().map(|a| (a.key.clone(), a.value.clone())).collect());
    }
    if let Some(t) = &p.target_type {
        cfg.target_type = Some(TargetType::parse(t).map_err(|e| bad("targetType", e))?);
    }
    Ok(())
}

pub fn parse(annotations: &BTreeMap<String, String>) -> Result<IngressConfig, Vec<AnnotationError>> {
    let mut r = Reader::new(vec![annotations]);
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
    let ip_address_type = r.opt("ip-address-type", parse_ip_address_type);
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
    let load_balancer_attributes = r.opt("load-balancer-attributes", parse_attributes);
    let use_regex_path_match = r.bool("use-regex-path-match").unwrap_or(false);
    let security_groups = r.opt("security-groups", |v| {
        let list = parse_list(v);
        if list.is_empty() { Err("no security group given".into()) } else { Ok(list) }
    });
    let manage_backend_security_group_rules = r.bool("manage-backend-security-group-rules");
    let mut actions = BTreeMap::new();
    let mut conditions = BTreeMap::new();
    let mut listener_attributes = BTreeMap::new();
    for (key, value) in annotations {
        let Some(rest) = key.strip_prefix(PREFIX) else { continue };
        if let Some(listener) = rest.strip_prefix("listener-attributes.") {
            let port =
                listener.split_once('-').filter(|(p, _)| matches!(*p, "HTTP" | "HTTPS")).and_then(|(_, port)| port.parse::<i32>().ok());
            match (port, parse_attributes(value)) {
                (Some(port), Ok(attrs)) => drop(listener_attributes.insert(port, attrs)),
                (None, _) => r.fail(rest, format!("{listener:?} must be PROTOCOL-PORT, e.g. HTTPS-443")),
                (_, Err(e)) => r.fail(rest, e),
            }
        }
        if let Some(name) = rest.strip_prefix("actions.") {
            match parse_action(value) {
                Ok((a, unknown)) => {
                    actions.insert(name.to_string(), a);
                    r.warn_unknown(rest, unknown);
                }
                Err(e) => r.fail(rest, e),
            }
        } else if let Some(name) = rest.strip_prefix("conditions.") {
            match parse_conditions(value) {
                Ok((c, unknown)) => {
                    conditions.insert(name.to_string(), c);
                    r.warn_unknown(rest, unknown);
                }
                Err(e) => r.fail(rest, e),
            }
        }
    }
    for key in annotations.keys() {
        if let Some(rest) = key.strip_prefix(PREFIX)
            && let Some(why) = not_read(rest)
        {
            r.warnings.push(AnnotationError { annotation: key.clone(), reason: why.into() });
        }
    }
    let warnings = std::mem::take(&mut r.warnings);
    r.done(IngressConfig {
        group_name,
        group_order,
        scheme,
        ip_address_type,
        load_balancer_name,
        subnets,
        subnet_tags: None,
        target_type: None,
        inbound_cidrs,
        ssl_redirect,
        ssl_policy,
        tags,
        listen_ports,
        certificate_arns,
        use_regex_path_match,
        load_balancer_attributes,
        security_groups,
        manage_backend_security_group_rules,
        listener_attributes,
        actions,
        conditions,
        warnings,
    })
}

/// The Ingress annotations this controller reads (suffixes after PREFIX; `*` ends a prefix).
pub(crate) const READ: &[&str] = &[
    "group.name",
    "group.order",
    "scheme",
    "ip-address-type",
    "load-balancer-name",
    "subnets",
    "inbound-cidrs",
    "ssl-redirect",
    "ssl-policy",
    "tags",
    "listen-ports",
    "certificate-arn",
    "load-balancer-attributes",
    "use-regex-path-match",
    "security-groups",
    "manage-backend-security-group-rules",
    "listener-attributes.*",
    "actions.*",
    "conditions.*",
    "target-type",
    "target-node-labels",
    "backend-protocol",
    "backend-protocol-version",
    "healthcheck-protocol",
    "healthcheck-port",
    "healthcheck-path",
    "healthcheck-interval-seconds",
    "healthcheck-timeout-seconds",
    "healthy-threshold-count",
    "unhealthy-threshold-count",
    "success-codes",
    "target-group-attributes",
    "auth-type",
    "auth-idp-oidc",
    "auth-idp-cognito",
    "auth-on-unauthenticated-request",
    "auth-scope",
    "auth-session-cookie",
    "auth-session-timeout",
];

/// Ingress annotations LBC implements and this controller does not (yet), from LBC's
/// pkg/annotations/constants.go.
const LBC_ONLY: &[&str] = &[
    "customer-owned-ipv4-pool",
    "wafv2-acl-arn",
    "wafv2-acl-name",
    "waf-acl-id",
    "web-acl-id",
    "shield-advanced-protection",
    "security-group-prefix-lists",
    "mutual-authentication",
    "jwt-validation",
    "multi-cluster-target-group",
    "minimum-load-balancer-capacity",
    "ipam-ipv4-pool-id",
    "enable-frontend-nlb",
    "frontend-nlb-*",
    "create-acm-cert",
    "acm-pca-arn",
    "dry-run-plan",
    "transforms.*",
    "target-control-port.*",
];

/// Why an annotation (suffix after PREFIX) is not read, if it is not. LBC ignores what it
/// does not know; we do too, but say so, since a typo or a missing feature (a WAF ACL)
/// changes what the load balancer does.
fn not_read(suffix: &str) -> Option<&'static str> {
    let listed = |list: &[&str]| {
        list.iter().any(|k| match k.strip_suffix('*') {
            Some(prefix) => suffix.starts_with(prefix),
            None => *k == suffix,
        })
    };
    if listed(READ) {
        None
    } else if listed(LBC_ONLY) {
        Some("LBC implements this annotation but this controller does not (yet); it is ignored")
    } else {
        Some("neither LBC nor this controller knows this annotation; it is ignored")
    }
}

/// `key=value,key=value` attributes, as AWS names them (`deletion_protection.enabled=true`).
fn parse_attributes(v: &str) -> Result<Tags, String> {
    let attrs = parse_string_map(v, "attribute")?;
    for (k, val) in &attrs {
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(format!("{k:?} is not an attribute name"));
        }
        if k.ends_with(".enabled") && !matches!(val.as_str(), "true" | "false") {
            return Err(format!("{k} must be true or false, not {val:?}"));
        }
    }
    Ok(attrs)
}

/// `k1=v1,k2=v2` as LBC's string-map annotations read it: `\,` is a comma inside a value,
/// and a comma not followed by another `key=` ends the list there (so `k=a,b` is refused).
/// Later keys win; empty pairs and a trailing comma are skipped.
fn split_pairs(v: &str) -> Vec<String> {
    let mut pairs = Vec::new();
    let mut current = String::new();
    let mut chars = v.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped)) => current.push(escaped),
                None => current.push(c),
            },
            ',' => {
                let rest = v[i + 1..].trim();
                pairs.push(std::mem::take(&mut current).trim().to_string());
                if !rest.is_empty() && !rest.contains('=') {
                    // Not a pair: kept whole, so that it is refused.
                    pairs.push(rest.to_string());
                    break;
                }
            }
            _ => current.push(c),
        }
    }
    pairs.push(current.trim().to_string());
    pairs.retain(|p| !p.is_empty());
    pairs
}

/// `k1=v1,k2=v2` (see `split_pairs`); `what` names an entry in errors.
fn parse_string_map(v: &str, what: &str) -> Result<Tags, String> {
    let mut map = Tags::new();
    for pair in split_pairs(v) {
        let (k, val) = pair.split_once('=').ok_or_else(|| format!("{what} {pair:?} is not in the form key=value"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("{what} {pair:?} has an empty key"));
        }
        map.insert(k.to_string(), val.trim().to_string());
    }
    Ok(map)
}

/// Services named by forward actions in `actions.*` annotations (unparsable ones are
/// skipped: they are reported when the model is built).
pub fn action_services(annotations: &BTreeMap<String, String>) -> Vec<String> {
    annotations
        .iter()
        .filter(|(k, _)| k.strip_prefix(PREFIX).is_some_and(|r| r.starts_with("actions.")))
        .filter_map(|(_, v)| parse_action(v).ok())
        .flat_map(|(a, _)| match a {
            ActionSpec::Forward { targets, .. } => targets
                .into_iter()
                .filter_map(|(t, _)| match t {
                    TargetRef::Service { name, .. } => Some(name),
                    TargetRef::Arn(_) => None,
                })
                .collect(),
            ActionSpec::Fixed(_) => Vec::new(),
        })
        .collect()
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ActionJson {
    #[serde(rename = "type")]
    kind: String,
    fixed_response_config: Option<FixedJson>,
    redirect_config: Option<RedirectJson>,
    #[serde(rename = "targetGroupARN")]
    target_group_arn: Option<String>,
    /// LBC looks the target group up by name; we do not (yet).
    target_group_name: Option<String>,
    forward_config: Option<ForwardJson>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FixedJson {
    status_code: String,
    content_type: Option<String>,
    message_body: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RedirectJson {
    protocol: Option<String>,
    port: Option<String>,
    host: Option<String>,
    path: Option<String>,
    query: Option<String>,
    status_code: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ForwardJson {
    target_groups: Vec<TupleJson>,
    target_group_stickiness_config: Option<StickinessJson>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TupleJson {
    #[serde(rename = "targetGroupARN")]
    target_group_arn: Option<String>,
    target_group_name: Option<String>,
    service_name: Option<String>,
    service_port: Option<serde_json::Value>,
    weight: Option<i32>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StickinessJson {
    /// Optional in LBC (absent = off).
    enabled: Option<bool>,
    duration_seconds: Option<i32>,
}

/// At most this many target groups per forward action (an ALB quota).
const MAX_TARGET_GROUPS_PER_ACTION: usize = 5;

/// An `actions.*` annotation, and the JSON keys it ignored.
fn parse_action(v: &str) -> Result<(ActionSpec, Vec<String>), String> {
    let (a, unknown): (ActionJson, _) = decode_json(v).map_err(|e| format!("not a valid action: {e}"))?;
    let no_names = "targetGroupName is not supported: give the target group's targetGroupARN";
    if a.target_group_name.is_some()
        || a.forward_config.as_ref().is_some_and(|f| f.target_groups.iter().any(|t| t.target_group_name.is_some()))
    {
        return Err(no_names.into());
    }
    let spec = match a.kind.as_str() {
        "fixed-response" => {
            let c = a.fixed_response_config.ok_or("fixed-response needs fixedResponseConfig")?;
            if !c.status_code.parse::<u16>().is_ok_and(|s| (200..=599).contains(&s)) {
                return Err(format!("status code {:?} must be between 200 and 599", c.status_code));
            }
            Ok(ActionSpec::Fixed(Action::FixedResponse {
                status_code: c.status_code,
                content_type: c.content_type,
                message_body: c.message_body,
            }))
        }
        "redirect" => {
            let c = a.redirect_config.ok_or("redirect needs redirectConfig")?;
            if !matches!(c.status_code.as_str(), "HTTP_301" | "HTTP_302") {
                return Err(format!("redirect status code {:?} must be HTTP_301 or HTTP_302", c.status_code));
            }
            Ok(ActionSpec::Fixed(Action::Redirect {
                protocol: c.protocol,
                port: c.port,
                host: c.host,
                path: c.path,
                query: c.query,
                status_code: c.status_code,
            }))
        }
        "forward" => {
            if let Some(arn) = a.target_group_arn {
                return Ok((ActionSpec::Forward { targets: vec![(TargetRef::Arn(arn), None)], stickiness_seconds: None }, unknown));
            }
            let f = a.forward_config.ok_or("forward needs targetGroupARN or forwardConfig")?;
            if f.target_groups.is_empty() || f.target_groups.len() > MAX_TARGET_GROUPS_PER_ACTION {
                return Err(format!(
                    "a forward action takes 1 to {MAX_TARGET_GROUPS_PER_ACTION} target groups, not {}",
                    f.target_groups.len()
                ));
            }
            let mut targets = Vec::new();
            for t in f.target_groups {
                let target = match (t.target_group_arn, t.service_name, t.service_port) {
                    (Some(arn), None, None) => TargetRef::Arn(arn),
                    (None, Some(name), Some(port)) => {
                        let port = match port {
                            serde_json::Value::String(s) => s,
                            serde_json::Value::Number(n) => n.to_string(),
                            other => return Err(format!("servicePort {other} must be a number or a name")),
                        };
                        TargetRef::Service { name, port }
                    }
                    _ => return Err("each target group needs either targetGroupARN or serviceName and servicePort".into()),
                };
                if let Some(w) = t.weight
                    && !(0..=999).contains(&w)
                {
                    return Err(format!("weight {w} must be between 0 and 999"));
                }
                targets.push((target, Some(t.weight.unwrap_or(1))));
            }
            let stickiness_seconds = match f.target_group_stickiness_config {
                Some(s) if s.enabled == Some(true) => Some(s.duration_seconds.unwrap_or(3600)),
                _ => None,
            };
            Ok(ActionSpec::Forward { targets, stickiness_seconds })
        }
        other => Err(format!("unknown action type {other:?}: must be fixed-response, redirect or forward")),
    };
    spec.map(|spec| (spec, unknown))
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConditionJson {
    field: String,
    host_header_config: Option<MatchJson>,
    path_pattern_config: Option<MatchJson>,
    http_header_config: Option<HeaderJson>,
    http_request_method_config: Option<ValuesJson>,
    query_string_config: Option<QueryJson>,
    #[serde(rename = "sourceIPConfig")]
    source_ip_config: Option<ValuesJson>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ValuesJson {
    values: Vec<String>,
}

/// Host and path conditions: values, or (LBC) regular expressions, which we do not support yet.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MatchJson {
    values: Option<Vec<String>>,
    regex_values: Option<Vec<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HeaderJson {
    http_header_name: String,
    values: Option<Vec<String>>,
    regex_values: Option<Vec<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct QueryJson {
    values: Vec<KeyValueJson>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeyValueJson {
    key: Option<String>,
    value: String,
}

/// The values of a condition config that LBC also lets give `regexValues`.
fn match_values(values: Option<Vec<String>>, regex_values: Option<Vec<String>>, config: &str) -> Result<Vec<String>, String> {
    if regex_values.is_some_and(|r| !r.is_empty()) {
        return Err(format!("{config}.regexValues is not supported; use values"));
    }
    values.filter(|v| !v.is_empty()).ok_or_else(|| format!("{config} needs values"))
}

/// A `conditions.*` annotation, and the JSON keys it ignored.
fn parse_conditions(v: &str) -> Result<(Vec<Condition>, Vec<String>), String> {
    let (list, unknown): (Vec<ConditionJson>, _) = decode_json(v).map_err(|e| format!("not a valid list of conditions: {e}"))?;
    let missing = |config: &str| format!("condition needs {config}");
    let conditions = list
        .into_iter()
        .map(|c| {
            Ok(match c.field.as_str() {
                "host-header" => {
                    let m = c.host_header_config.ok_or_else(|| missing("hostHeaderConfig"))?;
                    Condition::HostHeader(match_values(m.values, m.regex_values, "hostHeaderConfig")?)
                }
                "path-pattern" => {
                    let m = c.path_pattern_config.ok_or_else(|| missing("pathPatternConfig"))?;
                    Condition::PathPattern(match_values(m.values, m.regex_values, "pathPatternConfig")?)
                }
                "http-request-method" => {
                    let m = c.http_request_method_config.ok_or_else(|| missing("httpRequestMethodConfig"))?;
                    Condition::HttpRequestMethod(match_values(Some(m.values), None, "httpRequestMethodConfig")?)
                }
                "source-ip" => {
                    let m = c.source_ip_config.ok_or_else(|| missing("sourceIPConfig"))?;
                    Condition::SourceIp(match_values(Some(m.values), None, "sourceIPConfig")?)
                }
                "http-header" => {
                    let h = c.http_header_config.ok_or_else(|| missing("httpHeaderConfig"))?;
                    let values = match_values(h.values, h.regex_values, "httpHeaderConfig")?;
                    Condition::HttpHeader { name: h.http_header_name, values }
                }
                "query-string" => {
                    let q = c.query_string_config.ok_or_else(|| missing("queryStringConfig"))?;
                    Condition::QueryString(q.values.into_iter().map(|kv| (kv.key, kv.value)).collect())
                }
                other => return Err(format!("unknown condition field {other:?}")),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((conditions, unknown))
}

/// Target group settings of one backend Service, with LBC's defaults (gRPC ones for GRPC).
pub fn parse_backend(
    ingress: &BTreeMap<String, String>,
    service: &BTreeMap<String, String>,
    default_target_type: TargetType,
) -> Result<BackendConfig, Vec<AnnotationError>> {
    let mut r = Reader::new(vec![ingress, service]);
    let target_type = r.get("target-type", default_target_type, TargetType::parse);
    let node_labels = r.get("target-node-labels", Tags::new(), |v| parse_string_map(v, "label"));
    let protocol = r.get("backend-protocol", Protocol::Http, parse_protocol);
    let protocol_version = r.get("backend-protocol-version", "HTTP1".to_string(), |v| match v {
        "HTTP1" | "HTTP2" | "GRPC" => Ok(v.to_string()),
        _ => Err(format!("unknown protocol version {v:?}: must be HTTP1, HTTP2 or GRPC")),
    });
    let grpc = protocol_version == "GRPC";
    let hc_protocol = r.get("healthcheck-protocol", protocol, parse_protocol);
    // A Service port name (as LBC) is resolved to a number with the Service (see is_port_name).
    let hc_port = r.get("healthcheck-port", "traffic-port".to_string(), |v| match v {
        "traffic-port" => Ok(v.to_string()),
        _ if v.parse::<u16>().is_ok_and(|p| p > 0) => Ok(v.to_string()),
        _ if is_port_name(v) => Ok(v.to_string()),
        _ => Err(format!("{v:?} must be a port number, a port name of the Service or \"traffic-port\"")),
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
    let attributes = r.get("target-group-attributes", Tags::new(), parse_attributes);
    // Unlike the other settings, tags merge key by key: the Service's over the Ingress's.
    let mut tags = Tags::new();
    for layer in [ingress, service] {
        if let Some(v) = layer.get(&format!("{PREFIX}tags")) {
            match parse_tags(v) {
                Ok(t) => tags.extend(t),
                Err(e) => r.fail("tags", e),
            }
        }
    }
    let auth = parse_auth(&mut r);
    let warnings = std::mem::take(&mut r.warnings);
    r.done(BackendConfig {
        target_type,
        node_labels,
        attributes,
        auth,
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
        tags,
        warnings,
    })
}

/// A Kubernetes port name (IANA service name): up to 15 lower-case letters, digits and
/// hyphens, with a letter.
pub fn is_port_name(v: &str) -> bool {
    (1..=15).contains(&v.len())
        && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && v.chars().any(|c| c.is_ascii_lowercase())
        && !v.starts_with('-')
        && !v.ends_with('-')
}

/// An ALB's IP address types (CreateLoadBalancer's IpAddressType), as LBC accepts them.
fn parse_ip_address_type(v: &str) -> Result<String, String> {
    match v {
        "ipv4" | "dualstack" | "dualstack-without-public-ipv4" => Ok(v.to_string()),
        _ => Err(format!("unknown IP address type {v:?}: must be ipv4, dualstack or dualstack-without-public-ipv4")),
    }
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
    let tags = parse_string_map(v, "tag")?;
    for (k, val) in &tags {
        check_tag(k, val)?;
    }
    Ok(tags)
}

/// What ELBv2 accepts as a tag (API reference, `Tag`): a key of 1-128 and a value of up to
/// 256 letters, digits, spaces and `_.:/=+-@`; and not a key of AWS's or of our tracking.
pub fn check_tag(k: &str, v: &str) -> Result<(), String> {
    if k.starts_with("aws:") || k == crate::model::TAG_CLUSTER || k == crate::model::TAG_STACK || k == crate::model::TAG_RESOURCE {
        return Err(format!("tag key {k:?} is reserved"));
    }
    let allowed = |s: &str| s.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c));
    if k.is_empty() || k.chars().count() > 128 || !allowed(k) {
        return Err(format!("tag key {k:?} must be 1-128 letters, digits, spaces or _.:/=+-@"));
    }
    if v.chars().count() > 256 || !allowed(v) {
        return Err(format!("tag {k}: value {v:?} must be up to 256 letters, digits, spaces or _.:/=+-@"));
    }
    Ok(())
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
            // LBC keeps a port once, with the protocol listed last.
            ports.retain(|&(_, p)| p != port as i32);
            ports.push((protocol, port as i32));
        }
    }
    if ports.is_empty() {
        return Err("no listen port given".into());
    }
    // Quota "Listeners per Application Load Balancer".
    const MAX_LISTENERS: usize = 50;
    if ports.len() > MAX_LISTENERS {
        return Err(format!("{} listen ports; an ALB allows {MAX_LISTENERS} listeners", ports.len()));
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
    fn target_type_and_node_labels() {
        let b = parse_backend(&ann(&[("target-node-labels", "pool=web, zone=a")]), &BTreeMap::new(), TargetType::Instance).unwrap();
        assert_eq!(b.target_type, TargetType::Instance);
        assert_eq!(b.node_labels.len(), 2);
        let b = parse_backend(&BTreeMap::new(), &ann(&[("target-type", "ip")]), TargetType::Instance).unwrap();
        assert_eq!(b.target_type, TargetType::Ip);
        assert!(parse_backend(&ann(&[("target-type", "pod")]), &BTreeMap::new(), TargetType::Ip).is_err());
    }

    #[test]
    fn backend_defaults_match_lbc() {
        let b = parse_backend(&BTreeMap::new(), &BTreeMap::new(), TargetType::Ip).unwrap();
        assert_eq!((b.target_type, b.protocol, b.protocol_version.as_str()), (TargetType::Ip, Protocol::Http, "HTTP1"));
        let h = &b.health_check;
        assert_eq!((h.port.as_str(), h.path.as_str(), h.success_codes.as_str()), ("traffic-port", "/", "200"));
        assert_eq!((h.interval_seconds, h.timeout_seconds, h.healthy_threshold, h.unhealthy_threshold), (15, 5, 2, 2));
    }

    #[test]
    fn grpc_backends_get_grpc_health_check_defaults() {
        let b = parse_backend(&ann(&[("backend-protocol-version", "GRPC")]), &BTreeMap::new(), TargetType::Ip).unwrap();
        assert_eq!((b.health_check.path.as_str(), b.health_check.success_codes.as_str()), ("/AWS.ALB/healthcheck", "12"));
        assert!(
            parse_backend(&ann(&[("backend-protocol-version", "GRPC"), ("success-codes", "0-99")]), &BTreeMap::new(), TargetType::Ip)
                .is_ok()
        );
        assert!(
            parse_backend(&ann(&[("backend-protocol-version", "GRPC"), ("success-codes", "200")]), &BTreeMap::new(), TargetType::Ip)
                .is_err()
        );
    }

    #[test]
    fn service_annotations_override_ingress_annotations() {
        let ing = ann(&[("healthcheck-path", "/ing"), ("healthcheck-interval-seconds", "30")]);
        let svc = ann(&[("healthcheck-path", "/svc")]);
        let b = parse_backend(&ing, &svc, TargetType::Ip).unwrap();
        assert_eq!((b.health_check.path.as_str(), b.health_check.interval_seconds), ("/svc", 30));
    }

    #[test]
    fn health_check_ranges() {
        for (k, v) in [
            ("healthcheck-interval-seconds", "4"),
            ("healthy-threshold-count", "11"),
            ("healthcheck-port", "X_1"),
            ("healthcheck-port", "0"),
        ] {
            assert!(parse_backend(&ann(&[(k, v)]), &BTreeMap::new(), TargetType::Ip).is_err(), "{k}={v}");
        }
        let e = parse_backend(
            &ann(&[("healthcheck-interval-seconds", "5"), ("healthcheck-timeout-seconds", "5")]),
            &BTreeMap::new(),
            TargetType::Ip,
        );
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
    fn actions_of_every_kind() {
        let c = parse(&ann(&[
            ("actions.fixed", r#"{"type":"fixed-response","fixedResponseConfig":{"contentType":"text/plain","statusCode":"503","messageBody":"down"}}"#),
            ("actions.moved", r#"{"type":"redirect","redirectConfig":{"host":"aws.amazon.com","path":"/eks/","port":"443","protocol":"HTTPS","statusCode":"HTTP_302"}}"#),
            ("actions.legacy", r#"{"type":"forward","targetGroupARN":"arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y"}"#),
            ("actions.split", r#"{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"a","servicePort":"http","weight":20},{"serviceName":"b","servicePort":80,"weight":80}],"targetGroupStickinessConfig":{"enabled":true,"durationSeconds":200}}}"#),
        ]))
        .unwrap();
        assert!(matches!(&c.actions["fixed"], ActionSpec::Fixed(Action::FixedResponse { status_code, .. }) if status_code == "503"));
        assert!(matches!(&c.actions["moved"], ActionSpec::Fixed(Action::Redirect { status_code, .. }) if status_code == "HTTP_302"));
        assert!(matches!(&c.actions["legacy"], ActionSpec::Forward { targets, .. } if matches!(&targets[0].0, TargetRef::Arn(_))));
        let ActionSpec::Forward { targets, stickiness_seconds } = &c.actions["split"] else { panic!() };
        assert_eq!(targets[1], (TargetRef::Service { name: "b".into(), port: "80".into() }, Some(80)));
        assert_eq!(*stickiness_seconds, Some(200));
    }

    #[test]
    fn bad_actions_and_conditions_are_named() {
        let six = (0..6).map(|i| format!(r#"{{"targetGroupARN":"arn:{i}"}}"#)).collect::<Vec<_>>().join(",");
        for (k, v) in [
            ("actions.x", r#"{"type":"teleport"}"#.to_string()),
            ("actions.x", r#"{"type":"redirect","redirectConfig":{"statusCode":"HTTP_307"}}"#.to_string()),
            ("actions.x", format!(r#"{{"type":"forward","forwardConfig":{{"targetGroups":[{six}]}}}}"#)),
            ("conditions.x", r#"[{"field":"cookie"}]"#.to_string()),
            ("conditions.x", "not json".to_string()),
        ] {
            let errs = parse(&ann(&[(k, &v)])).unwrap_err();
            assert_eq!(errs[0].annotation, format!("{PREFIX}{k}"), "{v}");
        }
    }

    #[test]
    fn conditions_of_every_field() {
        let c = parse(&ann(&[(
            "conditions.web",
            r#"[{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Env","values":["canary"]}},
                {"field":"http-request-method","httpRequestMethodConfig":{"Values":["GET","HEAD"]}},
                {"field":"query-string","queryStringConfig":{"values":[{"key":"v","value":"2"}]}},
                {"field":"source-ip","sourceIpConfig":{"values":["10.0.0.0/8"]}},
                {"field":"host-header","hostHeaderConfig":{"values":["a.example.com"]}},
                {"field":"path-pattern","pathPatternConfig":{"values":["/x"]}}]"#,
        )]))
        .unwrap();
        assert_eq!(c.conditions["web"].len(), 6);
        assert_eq!(c.conditions["web"][0], Condition::HttpHeader { name: "X-Env".into(), values: vec!["canary".into()] });
    }

    #[test]
    fn attributes_of_load_balancers_listeners_and_target_groups() {
        let c = parse(&ann(&[
            ("load-balancer-attributes", "idle_timeout.timeout_seconds=120, deletion_protection.enabled=true"),
            ("listener-attributes.HTTPS-443", "routing.http.response.server.enabled=false"),
        ]))
        .unwrap();
        assert_eq!(c.load_balancer_attributes.unwrap()["idle_timeout.timeout_seconds"], "120");
        assert_eq!(c.listener_attributes[&443]["routing.http.response.server.enabled"], "false");
        let b = parse_backend(&BTreeMap::new(), &ann(&[("target-group-attributes", "stickiness.enabled=true")]), TargetType::Ip).unwrap();
        assert_eq!(b.attributes["stickiness.enabled"], "true");
        for (k, v) in [
            ("load-balancer-attributes", "deletion_protection.enabled=yes"),
            ("load-balancer-attributes", "no-equals"),
            ("listener-attributes.TCP-80", "a=b"),
        ] {
            assert!(parse(&ann(&[(k, v)])).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn authentication_annotations() {
        let oidc = r#"{"issuer":"https://i","authorizationEndpoint":"https://i/a","tokenEndpoint":"https://i/t","userInfoEndpoint":"https://i/u","secretName":"s","authenticationRequestExtraParams":{"prompt":"login"}}"#;
        let b = parse_backend(
            &ann(&[("auth-type", "oidc"), ("auth-idp-oidc", oidc)]),
            &ann(&[("auth-session-timeout", "3600")]),
            TargetType::Ip,
        )
        .unwrap();
        let auth = b.auth.unwrap();
        assert!(matches!(&auth.idp, AuthIdp::Oidc { secret_name, .. } if secret_name == "s"));
        assert_eq!((auth.session.session_timeout, auth.session.scope.as_str()), (3600, "openid"));
        assert_eq!(auth.session.extra_params["prompt"], "login");
        let cognito = r#"{"userPoolARN":"arn:pool","userPoolClientID":"c","userPoolDomain":"d"}"#;
        assert!(
            parse_backend(&ann(&[("auth-type", "cognito"), ("auth-idp-cognito", cognito)]), &BTreeMap::new(), TargetType::Ip)
                .unwrap()
                .auth
                .is_some()
        );
        for bad in [
            vec![("auth-type", "saml")],
            vec![("auth-type", "oidc")],
            vec![("auth-type", "oidc"), ("auth-idp-oidc", "{}")],
            vec![("auth-on-unauthenticated-request", "maybe")],
            vec![("auth-session-timeout", "0")],
        ] {
            assert!(parse_backend(&ann(&bad), &BTreeMap::new(), TargetType::Ip).is_err(), "{bad:?}");
        }
        assert_eq!(auth_secrets(&[&ann(&[("auth-idp-oidc", oidc)])]), vec!["s"]);
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
            assert!(parse_backend(&ann(&[("success-codes", ok)]), &BTreeMap::new(), TargetType::Ip).is_ok(), "{ok}");
        }
        for bad in ["abc", "600", "200-"] {
            assert!(parse_backend(&ann(&[("success-codes", bad)]), &BTreeMap::new(), TargetType::Ip).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_keys_match_lbc_spellings_case_insensitively() {
        let c = parse(&ann(&[
            ("conditions.lbc", r#"[{"field":"source-ip","sourceIPConfig":{"values":["10.0.0.0/8"]}}]"#),
            ("conditions.ours", r#"[{"field":"source-ip","sourceIpConfig":{"Values":["10.0.0.0/8"]}}]"#),
            ("conditions.shout", r#"[{"Field":"http-request-method","HTTPREQUESTMETHODCONFIG":{"VALUES":["GET"]}}]"#),
            ("actions.arn", r#"{"Type":"forward","targetGroupArn":"arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y"}"#),
            ("actions.tuple", r#"{"type":"forward","forwardConfig":{"targetGroups":[{"TargetGroupARN":"arn:x"}],"TargetGroupStickinessConfig":{"Enabled":true}}}"#),
        ]))
        .unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.conditions["lbc"], vec![Condition::SourceIp(vec!["10.0.0.0/8".into()])]);
        assert_eq!(c.conditions["ours"], c.conditions["lbc"]);
        assert_eq!(c.conditions["shout"], vec![Condition::HttpRequestMethod(vec!["GET".into()])]);
        assert!(matches!(&c.actions["arn"], ActionSpec::Forward { targets, .. } if matches!(&targets[0].0, TargetRef::Arn(_))));
        assert!(matches!(&c.actions["tuple"], ActionSpec::Forward { stickiness_seconds: Some(3600), .. }));
        for cognito in [
            r#"{"userPoolARN":"arn:pool","userPoolClientID":"c","userPoolDomain":"d"}"#,
            r#"{"userPoolArn":"arn:pool","userPoolClientId":"c","UserPoolDomain":"d"}"#,
        ] {
            let b =
                parse_backend(&ann(&[("auth-type", "cognito"), ("auth-idp-cognito", cognito)]), &BTreeMap::new(), TargetType::Ip).unwrap();
            assert!(matches!(b.auth.unwrap().idp, AuthIdp::Cognito { user_pool_client_id, .. } if user_pool_client_id == "c"));
        }
        let oidc = r#"{"Issuer":"https://i","authorizationendpoint":"https://i/a","tokenEndpoint":"https://i/t","userInfoEndpoint":"https://i/u","SecretName":"s","authenticationRequestExtraParams":{"Prompt":"login"}}"#;
        let b = parse_backend(&ann(&[("auth-type", "oidc"), ("auth-idp-oidc", oidc)]), &BTreeMap::new(), TargetType::Ip).unwrap();
        // The extra params are a free map: their keys are kept as written.
        assert_eq!(b.auth.unwrap().session.extra_params["Prompt"], "login");
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    }

    #[test]
    fn unknown_json_keys_are_accepted_with_a_warning_naming_them() {
        let c = parse(&ann(&[
            ("conditions.web", r#"[{"field":"source-ip","sourceIPConfig":{"values":["10.0.0.0/8"],"negate":true},"comment":"x"}]"#),
            ("actions.fixed", r#"{"type":"fixed-response","fixedResponseConfig":{"statusCode":"404","colour":"red"}}"#),
        ]))
        .unwrap();
        assert_eq!(c.conditions["web"].len(), 1);
        let warned: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warned,
            vec![
                r#"annotation alb.ingress.kubernetes.io/actions.fixed: unknown key "fixedResponseConfig.colour" is ignored"#,
                r#"annotation alb.ingress.kubernetes.io/conditions.web: unknown key "[0].sourceIPConfig.negate" is ignored"#,
                r#"annotation alb.ingress.kubernetes.io/conditions.web: unknown key "[0].comment" is ignored"#,
            ]
        );
        let oidc = r#"{"issuer":"https://i","authorizationEndpoint":"https://i/a","tokenEndpoint":"https://i/t","userInfoEndpoint":"https://i/u","secretName":"s","scope":"email"}"#;
        let b = parse_backend(&BTreeMap::new(), &ann(&[("auth-type", "oidc"), ("auth-idp-oidc", oidc)]), TargetType::Ip).unwrap();
        assert_eq!(b.warnings.len(), 1);
        assert!(b.warnings[0].to_string().contains(r#"auth-idp-oidc: unknown key "scope""#), "{}", b.warnings[0]);
    }

    #[test]
    fn lbc_keys_we_do_not_support_are_refused_by_name() {
        for (k, v, says) in [
            ("actions.x", r#"{"type":"forward","targetGroupName":"legacy"}"#, "targetGroupName"),
            ("actions.x", r#"{"type":"forward","forwardConfig":{"targetGroups":[{"targetGroupName":"legacy"}]}}"#, "targetGroupName"),
            ("conditions.x", r#"[{"field":"host-header","hostHeaderConfig":{"regexValues":["^a"]}}]"#, "regexValues"),
            ("conditions.x", r#"[{"field":"source-ip","sourceIPConfig":{"values":[]}}]"#, "sourceIPConfig needs values"),
        ] {
            let errs = parse(&ann(&[(k, v)])).unwrap_err();
            assert!(errs[0].to_string().contains(says), "{v}: {}", errs[0]);
        }
    }

    #[test]
    fn booleans_as_go_reads_them() {
        for (v, want) in [("true", true), ("True", true), ("1", true), ("t", true), ("FALSE", false), ("0", false), ("f", false)] {
            assert_eq!(parse(&ann(&[("use-regex-path-match", v)])).unwrap().use_regex_path_match, want, "{v}");
            assert_eq!(parse(&ann(&[("manage-backend-security-group-rules", v)])).unwrap().manage_backend_security_group_rules, Some(want));
        }
        assert!(parse(&ann(&[("use-regex-path-match", "yes")])).is_err());
    }

    #[test]
    fn string_maps_split_as_lbc_does() {
        assert_eq!(split_pairs(r"a=1, b = 2 ,c=x\,y,"), vec!["a=1", "b = 2", "c=x,y"]);
        let t = parse(&ann(&[("tags", r"team=web,path=/a\=b")])).unwrap().tags;
        assert_eq!(t["path"], "/a=b");
        // An escaped comma splits nothing, but ELBv2 refuses a comma in a tag.
        assert!(parse(&ann(&[("tags", r"note=a\,b")])).unwrap_err()[0].reason.contains("_.:/=+-@"));
        let attrs = parse(&ann(&[("load-balancer-attributes", r"x.header_value=GET\,POST")])).unwrap().load_balancer_attributes;
        assert_eq!(attrs.unwrap()["x.header_value"], "GET,POST");
        // A comma not followed by another key=value: LBC refuses it, and so do we.
        assert!(parse(&ann(&[("tags", "team=web,shop")])).is_err());
        assert!(parse(&ann(&[("load-balancer-attributes", "idle_timeout.timeout_seconds=60,x")])).is_err());
        let b = parse_backend(&ann(&[("target-node-labels", r"pool=web,zone=a")]), &BTreeMap::new(), TargetType::Instance).unwrap();
        assert_eq!(b.node_labels.len(), 2);
    }

    #[test]
    fn a_listen_port_listed_twice_keeps_the_last_protocol() {
        let c = parse(&ann(&[("listen-ports", r#"[{"HTTP": 80}, {"HTTP": 80}, {"HTTP": 8080}, {"HTTPS": 8080}]"#)])).unwrap();
        assert_eq!(c.listen_ports, Some(vec![(Protocol::Http, 80), (Protocol::Https, 8080)]));
        // Protocols are map keys in LBC, matched exactly.
        assert!(parse(&ann(&[("listen-ports", r#"[{"http": 80}]"#)])).is_err());
        let ports = |n: i32| format!("[{}]", (1..=n).map(|p| format!(r#"{{"HTTP": {}}}"#, 8000 + p)).collect::<Vec<_>>().join(","));
        assert!(parse(&ann(&[("listen-ports", &ports(50))])).is_ok());
        assert!(parse(&ann(&[("listen-ports", &ports(51))])).is_err(), "the quota is 50 listeners");
    }

    #[test]
    fn backend_tags_merge_key_by_key_with_the_service_winning() {
        let b = parse_backend(&ann(&[("tags", "team=web,env=prod")]), &ann(&[("tags", "env=staging,owner=svc")]), TargetType::Ip).unwrap();
        let want: Tags =
            [("env", "staging"), ("owner", "svc"), ("team", "web")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(b.tags, want);
        let e = parse_backend(&BTreeMap::new(), &ann(&[("tags", "aws:x=1")]), TargetType::Ip).unwrap_err();
        assert_eq!(e[0].annotation, format!("{PREFIX}tags"));
    }

    #[test]
    fn annotations_we_do_not_read_are_named_in_warnings() {
        let c = parse(&ann(&[
            ("scheme", "internal"),
            ("wafv2-acl-arn", "arn:aws:wafv2:us-east-1:1:regional/webacl/x/y"),
            ("frontend-nlb-scheme", "internal"),
            ("healthcheck-paht", "/x"),
            ("actions.x", r#"{"type":"fixed-response","fixedResponseConfig":{"statusCode":"404"}}"#),
        ]))
        .unwrap();
        let warned: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warned.len(), 3, "{warned:?}");
        assert!(warned[0].starts_with("annotation alb.ingress.kubernetes.io/frontend-nlb-scheme: LBC implements"), "{warned:?}");
        assert!(warned[1].starts_with("annotation alb.ingress.kubernetes.io/healthcheck-paht: neither LBC"), "{warned:?}");
        assert!(warned[2].starts_with("annotation alb.ingress.kubernetes.io/wafv2-acl-arn: LBC implements"), "{warned:?}");
    }

    #[test]
    fn ip_address_types_as_lbc() {
        for t in ["ipv4", "dualstack", "dualstack-without-public-ipv4"] {
            assert_eq!(parse(&ann(&[("ip-address-type", t)])).unwrap().ip_address_type.as_deref(), Some(t));
        }
        assert!(parse(&ann(&[("ip-address-type", "ipv6")])).is_err());
    }
}
