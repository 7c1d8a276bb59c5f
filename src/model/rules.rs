//! Listener rules: the routes of the members on a listener, in order, optimized as LBC's
//! rule optimizer does, numbered from priority 1, within the rules quota.

use std::collections::{BTreeMap, BTreeSet};

use super::intent::{MemberIntent, Route, problem};
use super::limits::MAX_RULES;
use super::tags::StackTags;
use super::{Action, Condition, Problem, Protocol, Rule};

/// The routes of the members listening on `port`: by rank where the source ranks them
/// across members (Gateway API precedence), else in member order.
pub fn routes_on(members: &[MemberIntent], port: i32) -> Vec<Route> {
    let mut routes: Vec<Route> = members
        .iter()
        .filter(|m| m.ports.iter().any(|&(_, p)| p == port))
        .flat_map(|m| m.routes.iter().filter(|r| r.port.is_none_or(|p| p == port)).cloned())
        .collect();
    // Stable: unranked routes keep member order.
    routes.sort_by_key(|r| r.rank.unwrap_or(usize::MAX));
    routes
}

/// The rules of one listener, numbered from 1. A rule carries its own member's tags, not
/// the group's (as LBC).
pub fn prioritized(routes: Vec<Route>, protocol: Protocol, port: i32, members: &[MemberIntent], tags: &StackTags) -> Vec<Rule> {
    routes
        .into_iter()
        .enumerate()
        .map(|(i, r)| Rule {
            priority: i as i32 + 1,
            from: r.from.clone(),
            conditions: r.conditions,
            // ALBs authenticate on HTTPS listeners only.
            auth: r.auth.filter(|_| protocol == Protocol::Https),
            action: r.action,
            transforms: r.transforms,
            tags: {
                let own = members.iter().find(|m| m.key == r.from).map_or_else(|| tags.members().clone(), |m| m.tags.clone());
                tags.own(own, &format!("{port}:{}", i + 1))
            },
        })
        .collect()
}

/// How many rules the listeners would have: each listener's members' routes, optimized
/// (none on an HTTP listener that redirects to HTTPS).
pub fn count(members: &[MemberIntent], listeners: &BTreeMap<i32, Protocol>, ssl_redirect: Option<i32>) -> usize {
    listeners
        .iter()
        .filter(|(_, protocol)| ssl_redirect.is_none() || **protocol == Protocol::Https)
        .map(|(&port, &protocol)| optimize(routes_on(members, port), protocol, port).0.len())
        .sum()
}

/// The rules quota: in member order, a member whose rules do not fit is left out.
pub fn within_quota(
    members: Vec<MemberIntent>,
    listeners: &BTreeMap<i32, Protocol>,
    ssl_redirect: Option<i32>,
    member_word: &str,
    problems: &mut Vec<Problem>,
) -> Vec<MemberIntent> {
    let mut kept: Vec<MemberIntent> = Vec::new();
    for m in members {
        kept.push(m);
        let total = count(&kept, listeners, ssl_redirect);
        if total > MAX_RULES
            && let Some(m) = kept.pop()
        {
            let msg = format!(
                "with this {member_word}'s {} rules the load balancer would have {total} rules; an ALB allows {MAX_RULES} (default rules not counted)",
                m.routes.len()
            );
            problems.push(problem(&m.key, msg));
        }
    }
    kept
}

/// As LBC's rule optimizer (pkg/ingress/rule_optimizer.go): a redirect that would
/// redirect to itself is dropped (`actions.ssl-redirect` on the HTTPS listener), and so
/// is a rule an earlier redirect already answers (the rules after `ssl-redirect` on the
/// HTTP listener). Every other rule is kept, even one an earlier rule leaves unreachable
/// (an ALB LBC made keeps its rules); that one gets a warning naming the earlier rule.
pub fn optimize(routes: Vec<Route>, protocol: Protocol, port: i32) -> (Vec<Route>, Vec<Problem>) {
    let mut kept: Vec<Route> = Vec::new();
    let mut warnings = Vec::new();
    for route in routes {
        if redirects_to_itself(&route, protocol, port)
            || kept.iter().any(|k| matches!(k.action, Action::Redirect { .. }) && answers_all(&k.conditions, &route.conditions))
        {
            continue;
        }
        if let Some((i, earlier)) = kept.iter().enumerate().find(|(_, k)| answers_all(&k.conditions, &route.conditions)) {
            warnings.push(Problem {
                ingress: route.from.clone(),
                reason: "UnreachableRule",
                message: format!(
                    "the rule for {} on port {port} can never match: rule {} of the listener, for {} of {}, matches every request it would (kept, as LBC keeps it)",
                    route.written,
                    i + 1,
                    earlier.written,
                    earlier.from
                ),
            });
        }
        kept.push(route);
    }
    (kept, warnings)
}

/// LBC's `isInfiniteRedirectRule`: every part of the redirect target is the request's own
/// (unset, the `#{…}` placeholder, or a value the rule's conditions require).
fn redirects_to_itself(route: &Route, protocol: Protocol, port: i32) -> bool {
    // A rewrite before the redirect (a Gateway prefix redirect) changes the request.
    if !route.transforms.is_empty() {
        return false;
    }
    let Action::Redirect { protocol: to_protocol, port: to_port, host, path, query, .. } = &route.action else { return false };
    let mut hosts = Vec::new();
    let mut paths = Vec::new();
    for c in &route.conditions {
        match c {
            Condition::HostHeader(v) => hosts.extend(v),
            Condition::PathPattern(v) => paths.extend(v),
            // A regular expression cannot be compared with a redirect path.
            Condition::PathRegex(_) => return false,
            _ => {}
        }
    }
    host.as_ref().is_none_or(|h| h == "#{host}" || hosts.contains(&h))
        && path.as_ref().is_none_or(|p| p == "/#{path}" || paths.contains(&p))
        && to_port.as_deref().is_none_or(|p| p == "#{port}" || p == port.to_string())
        && to_protocol.as_deref().is_none_or(|p| p == "#{protocol}" || p == protocol.as_str())
        && query.as_deref().is_none_or(|q| q == "#{query}")
}

/// Whether a rule with conditions `earlier` matches every request `later` matches, judged
/// as LBC's `isSupersetConditions`: only host and path conditions, compared as sets of
/// values (`/*` covers every path); any other condition on `earlier` narrows it.
pub fn answers_all(earlier: &[Condition], later: &[Condition]) -> bool {
    type Values<'c> = (BTreeSet<&'c String>, BTreeSet<(bool, &'c String)>);
    fn values(conditions: &[Condition], strict: bool) -> Option<Values<'_>> {
        let (mut hosts, mut paths) = (BTreeSet::new(), BTreeSet::new());
        for c in conditions {
            match c {
                Condition::HostHeader(v) => hosts.extend(v),
                Condition::PathPattern(v) => paths.extend(v.iter().map(|p| (false, p))),
                Condition::PathRegex(v) => paths.extend(v.iter().map(|p| (true, p))),
                _ if strict => return None,
                _ => {}
            }
        }
        Some((hosts, paths))
    }
    let (Some((e_hosts, e_paths)), Some((l_hosts, l_paths))) = (values(earlier, true), values(later, false)) else {
        return false;
    };
    let every_path = String::from("/*");
    let hosts = e_hosts.is_empty() || (!l_hosts.is_empty() && e_hosts.is_superset(&l_hosts));
    let paths = e_paths.is_empty() || e_paths.contains(&(false, &every_path)) || (!l_paths.is_empty() && e_paths.is_superset(&l_paths));
    hosts && paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjKey;

    fn rule(conditions: Vec<Condition>, action: Action) -> Route {
        Route {
            from: ObjKey { namespace: "shop".into(), name: "a".into() },
            written: "x".into(),
            conditions,
            auth: None,
            action,
            transforms: Vec::new(),
            port: None,
            rank: None,
        }
    }

    fn path(p: &str) -> Condition {
        Condition::PathPattern(vec![p.into()])
    }

    fn redirect(protocol: Option<&str>, port: Option<&str>, host: Option<&str>) -> Action {
        Action::Redirect {
            protocol: protocol.map(Into::into),
            port: port.map(Into::into),
            host: host.map(Into::into),
            path: None,
            query: None,
            status_code: "HTTP_301".into(),
        }
    }

    #[test]
    fn the_optimizer_drops_self_redirects_and_what_an_earlier_redirect_answers() {
        let to_https = redirect(Some("HTTPS"), Some("443"), None);
        let forward = Action::forward("tg");
        let rules = vec![
            rule(vec![path("/*")], to_https.clone()),
            rule(vec![path("/a")], forward.clone()),
            rule(vec![Condition::HttpHeader { name: "X".into(), values: vec!["1".into()] }, path("/b")], forward.clone()),
        ];
        // HTTP:80: the redirect answers everything after it.
        let (kept, warnings) = optimize(rules.clone(), Protocol::Http, 80);
        assert_eq!(kept.len(), 1);
        assert!(warnings.is_empty(), "dropping is not worth a warning: the ssl-redirect pattern");
        // HTTPS:443: the redirect would loop, so it goes; the rest stay.
        let (kept, _) = optimize(rules, Protocol::Https, 443);
        assert_eq!(kept.iter().map(|r| r.conditions.last().cloned()).collect::<Vec<_>>(), vec![Some(path("/a")), Some(path("/b"))]);
        // As LBC's isInfiniteRedirectRule: a placeholder or the rule's own host is "itself"
        // too; another host, port or protocol is not.
        let host = |h: &str| Condition::HostHeader(vec![h.into()]);
        let loops = |c: Vec<Condition>, a: Action, protocol, port| optimize(vec![rule(c, a)], protocol, port).0.is_empty();
        assert!(loops(vec![path("/*")], redirect(None, None, None), Protocol::Http, 80));
        assert!(loops(vec![host("a.com")], redirect(Some("#{protocol}"), Some("#{port}"), Some("a.com")), Protocol::Http, 80));
        assert!(!loops(vec![host("a.com")], redirect(None, None, Some("b.com")), Protocol::Http, 80));
        assert!(!loops(vec![path("/*")], redirect(Some("HTTPS"), Some("443"), None), Protocol::Http, 80));
        assert!(!loops(vec![Condition::PathRegex(vec!["^/x".into()])], redirect(None, None, None), Protocol::Http, 80));
    }

    #[test]
    fn only_host_and_path_conditions_make_an_earlier_rule_answer_all() {
        let host = |h: &str| Condition::HostHeader(vec![h.into()]);
        let header = Condition::HttpHeader { name: "X".into(), values: vec!["1".into()] };
        assert!(answers_all(&[path("/*")], &[host("a.com"), path("/x")]));
        assert!(answers_all(&[host("a.com")], &[host("a.com"), header.clone(), path("/x")]));
        assert!(answers_all(&[Condition::PathPattern(vec!["/a".into(), "/a/*".into()])], &[path("/a")]));
        assert!(!answers_all(&[host("a.com"), path("/*")], &[path("/x")]), "a later rule without the host matches more");
        assert!(!answers_all(&[header, path("/*")], &[path("/x")]), "a header narrows the earlier rule");
        assert!(!answers_all(&[path("/a/*")], &[path("/a/b")]), "patterns are compared as values, as LBC does");
        assert!(!answers_all(&[Condition::PathRegex(vec!["/*".into()])], &[path("/x")]));
    }
}
