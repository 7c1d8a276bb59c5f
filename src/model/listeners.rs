//! Listeners: one per port, HTTP or HTTPS for the whole load balancer; HTTP ones redirect
//! to HTTPS when asked, the others carry the members' rules on that port.

use std::collections::BTreeMap;

use super::intent::{MemberIntent, Wording, problem};
use super::tags::StackTags;
use super::{Action, Listener, Problem, Protocol, Tags, rules};

pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

/// The listeners by port. A port is HTTP or HTTPS for the whole load balancer: a later
/// member that would flip it is left out.
pub fn agree(members: &mut Vec<MemberIntent>, wording: &Wording, problems: &mut Vec<Problem>) -> BTreeMap<i32, Protocol> {
    let mut listeners: BTreeMap<i32, Protocol> = BTreeMap::new();
    members.retain(|m| {
        for &(protocol, port) in &m.ports {
            if let Some(&p) = listeners.get(&port)
                && p != protocol
            {
                problems.push(problem(&m.key, format!("listen port {port} is {} in another {} of the group", p.as_str(), wording.member)));
                return false;
            }
        }
        for &(protocol, port) in &m.ports {
            listeners.insert(port, protocol);
        }
        true
    });
    listeners
}

/// Drops the listeners no member listens on any more.
pub fn prune(listeners: &mut BTreeMap<i32, Protocol>, members: &[MemberIntent]) {
    listeners.retain(|port, _| members.iter().any(|m| m.ports.iter().any(|(_, p)| p == port)));
}

/// What every listener shares.
pub struct Shared<'a> {
    pub certificates: &'a [String],
    pub ssl_policy: Option<&'a str>,
    pub ssl_redirect: Option<i32>,
    /// The default action of every listener that does not redirect.
    pub default_action: Action,
}

/// The listeners, with their rules; unreachable rules come back as warnings.
pub fn build(
    listeners: &BTreeMap<i32, Protocol>,
    members: &[MemberIntent],
    shared: &Shared,
    tags: &StackTags,
    warnings: &mut Vec<Problem>,
) -> Vec<Listener> {
    let mut out = Vec::new();
    for (&port, &protocol) in listeners {
        let https = protocol == Protocol::Https;
        let redirect = shared.ssl_redirect.filter(|_| protocol == Protocol::Http);
        let routes = if redirect.is_none() { rules::routes_on(members, port) } else { Vec::new() };
        let (routes, unreachable) = rules::optimize(routes, protocol, port);
        warnings.extend(unreachable);
        out.push(Listener {
            port,
            protocol,
            certificates: if https { shared.certificates.to_vec() } else { Vec::new() },
            ssl_policy: https.then(|| shared.ssl_policy.unwrap_or(DEFAULT_SSL_POLICY).to_string()),
            // Merged across the members; the first in member order wins a key.
            attributes: members.iter().rev().filter_map(|m| m.listener_attributes.get(&port)).fold(Tags::new(), |mut acc, a| {
                acc.extend(a.clone());
                acc
            }),
            default_action: match redirect {
                Some(to) => Action::Redirect {
                    protocol: Some("HTTPS".into()),
                    port: Some(to.to_string()),
                    host: None,
                    path: None,
                    query: None,
                    status_code: "HTTP_301".into(),
                },
                None => shared.default_action.clone(),
            },
            rules: rules::prioritized(routes, protocol, port, members, tags),
            tags: tags.resource(&port.to_string()),
        });
    }
    out
}
