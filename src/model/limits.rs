//! AWS limits the model can check before AWS is called, so that a member AWS would refuse
//! is left out with a problem of its own instead of failing its whole group's sync.
//!
//! Sources: the ELBv2 API reference (RuleCondition, HostHeaderConditionConfig,
//! PathPatternConditionConfig, HttpHeaderConditionConfig, HttpRequestMethodConditionConfig,
//! QueryStringConditionConfig, CreateRule, Tag, LoadBalancerAttribute, TargetGroupAttribute,
//! TargetGroupStickinessConfig, FixedResponseActionConfig) and "Quotas for your Application
//! Load Balancers" (docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html).

use super::{Action, Condition, Tags};

/// Quota "Rules per Application Load Balancer (excluding default rules)". Priorities are
/// numbered from 1 per listener, so this also keeps them within CreateRule's 1-50000.
pub const MAX_RULES: usize = 100;
/// Quota "Condition values per rule".
pub const MAX_CONDITION_VALUES: usize = 5;
/// Quota "Condition wildcards per rule".
pub const MAX_CONDITION_WILDCARDS: usize = 5;
/// Host, path, header value and query-string key/value strings: "The maximum length of
/// each string is 128 characters".
const MAX_VALUE_LEN: usize = 128;
/// HttpHeaderName and HttpRequestMethod names: "The maximum length is 40 characters".
const MAX_NAME_LEN: usize = 40;
/// Tag: "Maximum number of tags per resource: 50" (ours included).
pub const MAX_TAGS: usize = 50;
/// FixedResponseActionConfig `MessageBody`: maximum length 1024.
const MAX_MESSAGE_BODY: usize = 1024;
/// TargetGroupStickinessConfig `DurationSeconds`: 1 to 7 days.
const MAX_STICKINESS_SECONDS: i32 = 604_800;

/// Whether AWS would take a rule with these conditions; why not otherwise. `written` names
/// the rule in the message (its host and path as the Ingress writes them).
pub fn check_conditions(conditions: &[Condition], written: &str) -> Result<(), String> {
    let refuse = |why: String| Err(format!("the rule for {written} {why}"));
    let values: usize = conditions.iter().map(Condition::value_count).sum();
    if values > MAX_CONDITION_VALUES {
        return refuse(format!("would have {values} condition values; an ALB rule allows {MAX_CONDITION_VALUES}"));
    }
    // RuleCondition: "up to one of each of http-request-method, host-header, path-pattern
    // and source-ip"; http-header and query-string may repeat.
    for (field, count) in [
        ("host-header", conditions.iter().filter(|c| matches!(c, Condition::HostHeader(_))).count()),
        ("path-pattern", conditions.iter().filter(|c| matches!(c, Condition::PathPattern(_) | Condition::PathRegex(_))).count()),
        ("http-request-method", conditions.iter().filter(|c| matches!(c, Condition::HttpRequestMethod(_))).count()),
        ("source-ip", conditions.iter().filter(|c| matches!(c, Condition::SourceIp(_))).count()),
    ] {
        if count > 1 {
            return refuse(format!("would have {count} {field} conditions; an ALB rule allows one"));
        }
    }
    let mut wildcards = 0;
    for c in conditions {
        let (field, strings): (&str, Vec<&String>) = match c {
            Condition::HostHeader(v) => ("host", v.iter().collect()),
            Condition::PathPattern(v) | Condition::PathRegex(v) => ("path", v.iter().collect()),
            Condition::HttpHeader { name, values } | Condition::HttpHeaderRegex { name, values } => {
                if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.contains(['*', '?']) {
                    return refuse(format!(
                        "has an http-header name of {} characters; AWS takes 1-{MAX_NAME_LEN}, no wildcards",
                        name.chars().count()
                    ));
                }
                ("http-header value", values.iter().collect())
            }
            Condition::HttpRequestMethod(v) => {
                if let Some(m) = v
                    .iter()
                    .find(|m| m.is_empty() || m.len() > MAX_NAME_LEN || !m.chars().all(|c| c.is_ascii_uppercase() || c == '-' || c == '_'))
                {
                    return refuse(format!("has the request method {:?}; AWS takes 1-{MAX_NAME_LEN} of A-Z, - and _", excerpt(m)));
                }
                continue;
            }
            Condition::QueryString(v) => ("query-string key or value", v.iter().flat_map(|(k, val)| k.iter().chain([val])).collect()),
            // CIDRs are checked where the annotation is read.
            Condition::SourceIp(_) => continue,
        };
        for s in strings {
            let len = s.chars().count();
            if len == 0 || len > MAX_VALUE_LEN {
                return refuse(format!("has a {field} of {len} characters ({:?}); AWS takes 1-{MAX_VALUE_LEN}", excerpt(s)));
            }
            if let Err(why) = match c {
                Condition::HostHeader(_) => check_host_chars(s),
                Condition::PathPattern(_) => check_path_chars(s),
                _ => Ok(()),
            } {
                return refuse(format!("has the {field} {:?}: {why}", excerpt(s)));
            }
            // Regular expressions have no wildcards in AWS's sense.
            if !matches!(c, Condition::PathRegex(_) | Condition::HttpHeaderRegex { .. }) {
                wildcards += s.chars().filter(|c| matches!(c, '*' | '?')).count();
            }
        }
    }
    if wildcards > MAX_CONDITION_WILDCARDS {
        return refuse(format!(
            "would have {wildcards} wildcards (* or ?) in its conditions; an ALB rule allows {MAX_CONDITION_WILDCARDS}"
        ));
    }
    Ok(())
}

/// HostHeaderConditionConfig Values: "can contain A-Z, a-z, 0-9, - . * ?"; "You must include
/// at least one "." character. You can include only alphabetical characters after the final
/// "." character." Kubernetes takes a host without a dot (`intranet`); AWS does not.
fn check_host_chars(host: &str) -> Result<(), String> {
    if let Some(c) = host.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*' | '?'))) {
        return Err(format!("AWS takes only A-Z, a-z, 0-9, - . * ? in a host, not {c:?}"));
    }
    let Some((_, tld)) = host.rsplit_once('.') else {
        return Err("AWS needs at least one \".\" in a host".to_string());
    };
    if tld.is_empty() || !tld.chars().all(|c| c.is_ascii_alphabetic() || matches!(c, '*' | '?')) {
        return Err("AWS takes only letters after a host's last \".\"".to_string());
    }
    Ok(())
}

/// PathPatternConditionConfig Values: "can contain A-Z, a-z, 0-9, _ - . $ / ~ " ' @ : + & * ?".
fn check_path_chars(path: &str) -> Result<(), String> {
    match path.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&*?".contains(*c))) {
        Some(c) => Err(format!("AWS takes only A-Z, a-z, 0-9 and _ - . $ / ~ \" ' @ : + & * ? in a path, not {c:?}")),
        None => Ok(()),
    }
}

/// Whether AWS would take this action: weights, stickiness and fixed-response bodies.
pub fn check_action(action: &Action) -> Result<(), String> {
    match action {
        Action::Forward { stickiness_seconds: Some(s), .. } if !(1..=MAX_STICKINESS_SECONDS).contains(s) => {
            Err(format!("the forward action's stickiness duration {s}s must be 1-{MAX_STICKINESS_SECONDS} seconds"))
        }
        Action::FixedResponse { message_body: Some(body), .. } if body.chars().count() > MAX_MESSAGE_BODY => {
            Err(format!("the fixed-response body has {} characters; AWS takes up to {MAX_MESSAGE_BODY}", body.chars().count()))
        }
        _ => Ok(()),
    }
}

/// Value ranges of the attributes whose range the API reference gives; other keys (and
/// the `*.enabled` booleans, checked where they are read) pass.
pub fn check_attributes(attributes: &Tags, annotation: &str) -> Result<(), String> {
    for (key, value) in attributes {
        let range = match key.as_str() {
            // LoadBalancerAttribute
            "idle_timeout.timeout_seconds" => Some((1, 4000)),
            "client_keep_alive.seconds" => Some((60, 604_800)),
            // TargetGroupAttribute
            "deregistration_delay.timeout_seconds" => Some((0, 3600)),
            "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => Some((1, 604_800)),
            "slow_start.duration_seconds" => {
                // 30-900, or 0 to turn it off.
                if value != "0" {
                    check_range(key, value, 30, 900, annotation)?;
                }
                None
            }
            _ => None,
        };
        if let Some((low, high)) = range {
            check_range(key, value, low, high, annotation)?;
        }
        let choices: &[&str] = match key.as_str() {
            "routing.http.desync_mitigation_mode" => &["monitor", "defensive", "strictest"],
            "stickiness.type" => &["lb_cookie", "app_cookie"],
            "load_balancing.algorithm.type" => &["round_robin", "least_outstanding_requests", "weighted_random"],
            _ => &[],
        };
        if !choices.is_empty() && !choices.contains(&value.as_str()) {
            return Err(format!("annotation {annotation}: {key}={:?} must be one of {}", excerpt(value), choices.join(", ")));
        }
    }
    Ok(())
}

fn check_range(key: &str, value: &str, low: i64, high: i64, annotation: &str) -> Result<(), String> {
    match value.parse::<i64>() {
        Ok(n) if (low..=high).contains(&n) => Ok(()),
        _ => Err(format!("annotation {annotation}: {key}={:?} must be a whole number of {low}-{high}", excerpt(value))),
    }
}

/// A short prefix of a value, for messages (a bad value can be huge).
fn excerpt(s: &str) -> String {
    const SHOWN: usize = 40;
    if s.chars().count() <= SHOWN { s.to_string() } else { format!("{}…", s.chars().take(SHOWN).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Condition {
        Condition::HostHeader(vec![h.to_string()])
    }

    fn path(p: &[&str]) -> Condition {
        Condition::PathPattern(p.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn value_lengths_are_aws_limits() {
        let long_host = format!("{}.example.com", "a".repeat(117));
        assert_eq!(long_host.len(), 129);
        let err = check_conditions(&[host(&long_host)], "host x").unwrap_err();
        assert!(err.contains("host of 129 characters") && err.contains("1-128"), "{err}");
        assert!(check_conditions(&[host(&long_host[1..])], "host x").is_ok(), "128 characters are allowed");
        let long_path = format!("/{}", "p".repeat(128));
        assert!(check_conditions(&[path(&[&long_path])], "path").unwrap_err().contains("path of 129 characters"));
        let header = Condition::HttpHeader { name: "X".repeat(41), values: vec!["v".into()] };
        assert!(check_conditions(&[header], "path").unwrap_err().contains("http-header name"));
        let query = Condition::QueryString(vec![(Some("k".into()), "v".repeat(129))]);
        assert!(check_conditions(&[query], "path").unwrap_err().contains("query-string"));
        let method = Condition::HttpRequestMethod(vec!["get".into()]);
        assert!(check_conditions(&[method], "path").unwrap_err().contains("request method"));
    }

    #[test]
    fn host_and_path_characters_are_aws_rules() {
        for ok in ["example.com", "*.example.com", "a-b.c?.org", "*.example.*"] {
            assert!(check_conditions(&[host(ok)], "host").is_ok(), "{ok}");
        }
        let err = check_conditions(&[host("intranet")], "host intranet").unwrap_err();
        assert!(err.contains("at least one \".\""), "{err}");
        assert!(check_conditions(&[host("example.c0m")], "h").unwrap_err().contains("letters after"));
        assert!(check_conditions(&[host("exa_mple.com")], "h").unwrap_err().contains("not '_'"));
        assert!(check_conditions(&[path(&["/a/b-c_d.e~f$g'h@i:j+k&l*"])], "p").is_ok());
        assert!(check_conditions(&[path(&["/a,b"])], "p").unwrap_err().contains("not ','"));
        assert!(check_conditions(&[path(&["/a b"])], "p").unwrap_err().contains("not ' '"));
    }

    #[test]
    fn counts_and_wildcards_per_rule() {
        let six = [host("a.example.com"), path(&["/1", "/2", "/3", "/4", "/5"])];
        assert!(check_conditions(&six, "p").unwrap_err().contains("6 condition values"));
        let wild = [host("*.a.example.com"), path(&["/a/*", "/b/*", "/c/*", "/d?/*"])];
        assert!(check_conditions(&wild, "p").unwrap_err().contains("6 wildcards"), "{:?}", check_conditions(&wild, "p"));
        let two_methods = [Condition::HttpRequestMethod(vec!["GET".into()]), Condition::HttpRequestMethod(vec!["POST".into()])];
        assert!(check_conditions(&two_methods, "p").unwrap_err().contains("2 http-request-method conditions"));
        assert!(check_conditions(&[host("*.example.com"), path(&["/api", "/api/*"])], "p").is_ok());
    }

    #[test]
    fn attribute_ranges() {
        let t = |k: &str, v: &str| Tags::from([(k.to_string(), v.to_string())]);
        assert!(check_attributes(&t("idle_timeout.timeout_seconds", "4000"), "a").is_ok());
        assert!(check_attributes(&t("idle_timeout.timeout_seconds", "4001"), "a").unwrap_err().contains("1-4000"));
        assert!(check_attributes(&t("idle_timeout.timeout_seconds", "soon"), "a").is_err());
        assert!(check_attributes(&t("slow_start.duration_seconds", "0"), "a").is_ok());
        assert!(check_attributes(&t("slow_start.duration_seconds", "10"), "a").is_err());
        assert!(check_attributes(&t("stickiness.type", "source_ip"), "a").is_err());
        assert!(check_attributes(&t("some.other_key", "anything"), "a").is_ok());
    }

    #[test]
    fn stickiness_and_fixed_response_bodies() {
        let sticky = Action::Forward { target_groups: vec![], stickiness_seconds: Some(604_801) };
        assert!(check_action(&sticky).is_err());
        let body = Action::FixedResponse { status_code: "200".into(), content_type: None, message_body: Some("x".repeat(1025)) };
        assert!(check_action(&body).is_err());
    }
}
