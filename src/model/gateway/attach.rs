//! Which routes attach to which listeners, as the Gateway API spec defines it: by
//! `parentRefs` (section name, port), by `allowedRoutes` (namespaces, kinds) and by
//! hostname; and the conditions that say so on the Gateway's listeners and the routes.

use std::collections::{BTreeMap, BTreeSet};

use super::spec::{FromNamespaces, GATEWAY_GROUP, GatewaySpec, ListenerSpec, ParentRef, RouteKind, RouteSpec, selects};
use crate::model::{ObjKey, Protocol, Tags};

/// A status condition as the spec names it; `observedGeneration` is the object's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Condition {
    /// Whether it reports something wrong: `Conflicted` and `PartiallyInvalid` when True,
    /// every other condition when False.
    pub fn is_problem(&self) -> bool {
        self.status == matches!(self.type_, "Conflicted" | "PartiallyInvalid")
    }
}

fn cond(type_: &'static str, status: bool, reason: &'static str, message: impl Into<String>) -> Condition {
    Condition { type_, status, reason, message: message.into() }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerStatus {
    pub name: String,
    pub attached_routes: i32,
    /// Route kinds it takes, as `supportedKinds`.
    pub supported_kinds: Vec<RouteKind>,
    /// `Accepted`, `ResolvedRefs`, `Conflicted` (the controller adds `Programmed`).
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentStatus {
    pub parent: ParentRef,
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteStatus {
    pub kind: RouteKind,
    pub key: ObjKey,
    pub generation: i64,
    pub parents: Vec<ParentStatus>,
}

/// A listener as checked: its protocol if ALB can serve it, else why not.
struct ListenerState<'a> {
    spec: &'a ListenerSpec,
    protocol: Result<Protocol, String>,
    conflict: Option<(&'static str, String)>,
    kinds: Vec<RouteKind>,
    invalid_kinds: Vec<String>,
    attached: BTreeSet<(RouteKind, ObjKey)>,
}

impl ListenerState<'_> {
    fn usable(&self) -> Option<Protocol> {
        self.protocol.as_ref().ok().copied().filter(|_| self.conflict.is_none())
    }
}

/// A route attached to at least one listener of the Gateway.
pub struct AttachedRoute<'a> {
    pub spec: &'a RouteSpec,
    /// The listener ports it serves, with their protocol and the hostnames its rules
    /// match there (`None`: any host).
    pub ports: BTreeMap<i32, (Protocol, Option<BTreeSet<String>>)>,
}

pub struct Attached<'a> {
    listeners: Vec<ListenerState<'a>>,
    pub routes: Vec<AttachedRoute<'a>>,
    statuses: Vec<RouteStatus>,
}

pub fn attach<'a>(gw: &'a GatewaySpec, routes: &'a [RouteSpec], namespaces: &BTreeMap<String, Tags>) -> Attached<'a> {
    let mut listeners = check_listeners(gw);
    let mut attached = Vec::new();
    let mut statuses = Vec::new();
    // The oldest route first (the spec's tie-breaker), then by kind, namespace and name.
    let mut ordered: Vec<&RouteSpec> = routes.iter().collect();
    ordered.sort_by(|a, b| (&a.created, a.kind, &a.key).cmp(&(&b.created, b.kind, &b.key)));
    for route in ordered {
        let mut status = RouteStatus { kind: route.kind, key: route.key.clone(), generation: route.generation, parents: Vec::new() };
        let mut ports: BTreeMap<i32, (Protocol, Option<BTreeSet<String>>)> = BTreeMap::new();
        for parent in route.parents.iter().filter(|p| names_gateway(p, gw)) {
            let accepted = attach_parent(route, parent, &mut listeners, namespaces, &mut ports);
            status.parents.push(ParentStatus { parent: parent.clone(), conditions: vec![accepted] });
        }
        if status.parents.is_empty() {
            continue;
        }
        if !ports.is_empty() {
            attached.push(AttachedRoute { spec: route, ports });
        }
        statuses.push(status);
    }
    Attached { listeners, routes: attached, statuses }
}

fn names_gateway(p: &ParentRef, gw: &GatewaySpec) -> bool {
    p.group == GATEWAY_GROUP && p.kind == "Gateway" && p.namespace == gw.key.namespace && p.name == gw.key.name
}

/// ALB listeners are HTTP or HTTPS; listeners sharing a port must agree on the protocol
/// and differ in hostname.
fn check_listeners(gw: &GatewaySpec) -> Vec<ListenerState<'_>> {
    let mut states: Vec<ListenerState> = gw
        .listeners
        .iter()
        .map(|l| {
            let protocol = match l.protocol.as_str() {
                "HTTP" => Ok(Protocol::Http),
                "HTTPS" => Ok(Protocol::Https),
                other => Err(format!("protocol {other} is not served by an Application Load Balancer (HTTP and HTTPS are)")),
            };
            let offered: &[RouteKind] = match protocol {
                Ok(Protocol::Https) => &[RouteKind::Http, RouteKind::Grpc],
                // gRPC target groups are only served behind HTTPS listeners.
                Ok(Protocol::Http) => &[RouteKind::Http],
                Err(_) => &[],
            };
            let (kinds, invalid_kinds) = if l.kinds.is_empty() {
                (offered.to_vec(), Vec::new())
            } else {
                let mut kinds = Vec::new();
                let mut invalid = Vec::new();
                for (group, kind) in &l.kinds {
                    match offered.iter().find(|k| group == GATEWAY_GROUP && k.as_str() == kind) {
                        Some(k) => kinds.push(*k),
                        None => invalid.push(format!("{group}/{kind}")),
                    }
                }
                (kinds, invalid)
            };
            ListenerState { spec: l, protocol, conflict: None, kinds, invalid_kinds, attached: BTreeSet::new() }
        })
        .collect();
    for i in 0..states.len() {
        for j in 0..states.len() {
            if i == j || states[i].spec.port != states[j].spec.port {
                continue;
            }
            let (a, b) = (&states[i], &states[j]);
            let conflict = match (&a.protocol, &b.protocol) {
                (Ok(pa), Ok(pb)) if pa != pb => Some((
                    "ProtocolConflict",
                    format!(
                        "port {} is {} for listener {:?} and {} for {:?}",
                        a.spec.port,
                        pa.as_str(),
                        a.spec.name,
                        pb.as_str(),
                        b.spec.name
                    ),
                )),
                (Ok(_), Ok(_)) if a.spec.hostname == b.spec.hostname => {
                    Some(("HostnameConflict", format!("listener {:?} has the same port and hostname as {:?}", a.spec.name, b.spec.name)))
                }
                _ => None,
            };
            if let Some(c) = conflict {
                states[i].conflict.get_or_insert(c);
            }
        }
    }
    states
}

fn attach_parent(
    route: &RouteSpec,
    parent: &ParentRef,
    listeners: &mut [ListenerState],
    namespaces: &BTreeMap<String, Tags>,
    ports: &mut BTreeMap<i32, (Protocol, Option<BTreeSet<String>>)>,
) -> Condition {
    let candidates: Vec<usize> = (0..listeners.len())
        .filter(|&i| parent.section_name.as_ref().is_none_or(|s| *s == listeners[i].spec.name))
        .filter(|&i| parent.port.is_none_or(|p| p == listeners[i].spec.port))
        .filter(|&i| listeners[i].usable().is_some())
        .collect();
    if candidates.is_empty() {
        return cond(
            "Accepted",
            false,
            "NoMatchingParent",
            "no valid listener of the Gateway matches the parentRef's sectionName and port",
        );
    }
    let allowed: Vec<usize> = candidates.into_iter().filter(|&i| allows(&listeners[i], route, &parent.namespace, namespaces)).collect();
    if allowed.is_empty() {
        return cond(
            "Accepted",
            false,
            "NotAllowedByListeners",
            "the listeners' allowedRoutes do not admit this route's namespace or kind",
        );
    }
    let mut any = false;
    for i in allowed {
        let l = &mut listeners[i];
        let Some(hosts) = intersect(l.spec.hostname.as_deref(), &route.hostnames) else { continue };
        any = true;
        l.attached.insert((route.kind, route.key.clone()));
        let protocol = l.usable().expect("candidates are usable");
        let entry = ports.entry(l.spec.port).or_insert((protocol, Some(BTreeSet::new())));
        entry.1 = match (entry.1.take(), hosts) {
            (Some(mut have), Some(more)) => {
                have.extend(more);
                Some(have)
            }
            _ => None,
        };
    }
    if !any {
        return cond("Accepted", false, "NoMatchingListenerHostname", "no hostname of the route matches a hostname of the listeners");
    }
    cond("Accepted", true, "Accepted", "Route is accepted.")
}

fn allows(l: &ListenerState, route: &RouteSpec, gateway_namespace: &str, namespaces: &BTreeMap<String, Tags>) -> bool {
    let namespace_ok = match &l.spec.namespaces {
        FromNamespaces::All => true,
        FromNamespaces::Same => route.key.namespace == gateway_namespace,
        FromNamespaces::Selector(s) => namespaces.get(&route.key.namespace).is_some_and(|labels| selects(s, labels)),
    };
    l.kinds.contains(&route.kind) && namespace_ok
}

/// The hostnames a route's rules match on a listener: `None` for any host, `Some(set)` for
/// those hosts, and no answer at all when the two have none in common. A wildcard
/// (`*.example.com`) matches names with one or more labels in its place; of two matching
/// names the more specific is the one used.
pub fn intersect(listener: Option<&str>, route: &[String]) -> Option<Option<BTreeSet<String>>> {
    match (listener, route.is_empty()) {
        (None, true) => Some(None),
        (None, false) => Some(Some(route.iter().cloned().collect())),
        (Some(l), true) => Some(Some(BTreeSet::from([l.to_string()]))),
        (Some(l), false) => {
            let hosts: BTreeSet<String> = route.iter().filter_map(|r| more_specific(l, r)).collect();
            (!hosts.is_empty()).then_some(Some(hosts))
        }
    }
}

fn more_specific(a: &str, b: &str) -> Option<String> {
    if a == b {
        return Some(a.to_string());
    }
    let covers = |wild: &str, name: &str| wild.strip_prefix('*').is_some_and(|suffix| name.ends_with(suffix) && name.len() > suffix.len());
    if covers(a, b) {
        Some(b.to_string())
    } else if covers(b, a) {
        Some(a.to_string())
    } else {
        None
    }
}

impl Attached<'_> {
    /// Records what the route's rules and backends came to: `refused` rules ALB cannot
    /// express, `unresolved` backend references (reason, message).
    pub fn report(&mut self, route: &RouteSpec, refused: Vec<String>, unresolved: Vec<(&'static str, String)>) {
        let Some(status) = self.statuses.iter_mut().find(|s| s.kind == route.kind && s.key == route.key) else { return };
        let all_refused = !refused.is_empty() && refused.len() >= route.rules.len();
        for p in status.parents.iter_mut().filter(|p| p.conditions.iter().any(|c| c.type_ == "Accepted" && c.status)) {
            if all_refused {
                p.conditions[0] = cond("Accepted", false, "UnsupportedValue", refused.join("; "));
            } else if !refused.is_empty() {
                p.conditions.push(cond("PartiallyInvalid", true, "UnsupportedValue", refused.join("; ")));
            }
        }
        for p in &mut status.parents {
            p.conditions.push(match unresolved.first() {
                Some((reason, _)) => {
                    cond("ResolvedRefs", false, reason, unresolved.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; "))
                }
                None => cond("ResolvedRefs", true, "ResolvedRefs", "All references are resolved."),
            });
        }
    }

    /// Routes the stack builders left out: not accepted, and not counted on any listener.
    pub fn refuse_left_out(&mut self, left_out: &BTreeMap<ObjKey, String>) {
        for status in &mut self.statuses {
            let Some(message) = left_out.get(&status.key) else { continue };
            for p in &mut status.parents {
                if p.conditions.first().is_some_and(|c| c.status) {
                    p.conditions[0] = cond("Accepted", false, "UnsupportedValue", message.clone());
                }
            }
            for l in &mut self.listeners {
                l.attached.remove(&(status.kind, status.key.clone()));
            }
        }
    }

    pub fn gateway_accepted(&self) -> Condition {
        let invalid: Vec<&str> = self.listeners.iter().filter(|l| l.usable().is_none()).map(|l| l.spec.name.as_str()).collect();
        if invalid.is_empty() {
            return cond("Accepted", true, "Accepted", "Gateway is accepted.");
        }
        let some_valid = invalid.len() < self.listeners.len();
        cond("Accepted", some_valid, "ListenersNotValid", format!("listeners not valid: {}", invalid.join(", ")))
    }

    pub fn listener_statuses(&self) -> Vec<ListenerStatus> {
        self.listeners
            .iter()
            .map(|l| {
                let accepted = match &l.protocol {
                    Ok(_) => cond("Accepted", true, "Accepted", "Listener is accepted."),
                    Err(why) => cond("Accepted", false, "UnsupportedProtocol", why.clone()),
                };
                let resolved = if l.invalid_kinds.is_empty() {
                    cond("ResolvedRefs", true, "ResolvedRefs", "Listener has all refs resolved.")
                } else {
                    cond("ResolvedRefs", false, "InvalidRouteKinds", format!("route kinds not supported: {}", l.invalid_kinds.join(", ")))
                };
                let conflicted = match &l.conflict {
                    Some((reason, why)) => cond("Conflicted", true, reason, why.clone()),
                    None => cond("Conflicted", false, "NoConflicts", "Listener has no conflict."),
                };
                ListenerStatus {
                    name: l.spec.name.clone(),
                    attached_routes: l.attached.len() as i32,
                    supported_kinds: l.kinds.clone(),
                    conditions: vec![accepted, resolved, conflicted],
                }
            })
            .collect()
    }

    pub fn route_statuses(self) -> Vec<RouteStatus> {
        self.statuses
    }
}
