//! Members' intents in, a `Stack` out: each aspect in turn, and a member an aspect cannot
//! serve (a conflicting tag, no certificate, past a quota, …) is left out with a problem
//! while the others still make the stack.

use std::collections::{BTreeMap, BTreeSet};

use super::intent::{LoadBalancerIntent, MemberIntent, SubnetChoice, Wording, World, problem};
use super::security_groups::Backend;
use super::tags::StackTags;
use super::*;

#[derive(Debug, Default)]
pub struct Built {
    /// `None` when no member could be built: AWS is then left as it is.
    pub stack: Option<Stack>,
    /// Members left out of the stack, with why.
    pub problems: Vec<Problem>,
    /// Members built in a degraded way (e.g. a rule answering 503), with why.
    pub warnings: Vec<Problem>,
}

/// The stack of the members, in their order (the first wins what only one may set).
pub fn assemble(world: &World, wording: &Wording, mut lb: LoadBalancerIntent, mut members: Vec<MemberIntent>, out: &mut Built) {
    tags::agree(&mut members, wording, &mut out.problems);
    let mut listeners = listeners::agree(&mut members, wording, &mut out.problems);
    if members.is_empty() {
        return;
    }

    let scheme = load_balancer::scheme(&lb);
    let choice = lb.subnets.clone().unwrap_or(SubnetChoice::Discover);
    let subnets = match load_balancer::subnets(world.subnets, scheme, world.cluster, &choice, wording) {
        Ok(s) => s,
        Err(message) => {
            out.problems.extend(members.iter().map(|m| problem(&m.key, message.clone())));
            return;
        }
    };

    let certificates_of = |members: &[MemberIntent], listeners: &BTreeMap<i32, Protocol>| {
        certificates::choose(world.certificates, wording, members, listeners)
    };
    let mut certificates = match certificates_of(&members, &listeners) {
        Ok(c) => c,
        Err(problems) => {
            let bad: BTreeSet<ObjKey> = problems.iter().map(|p| p.ingress.clone()).collect();
            out.problems.extend(problems);
            members.retain(|m| !bad.contains(&m.key));
            listeners::prune(&mut listeners, &members);
            if members.is_empty() {
                return;
            }
            certificates_of(&members, &listeners).unwrap_or_default()
        }
    };
    if let Some(port) = lb.ssl_redirect
        && listeners.get(&port) != Some(&Protocol::Https)
    {
        // The members that ask for it are left out; the others do not redirect.
        let msg = format!("{}: port {port} is not an HTTPS listen port of this load balancer", wording.ssl_redirect);
        drop_members(&mut members, &mut listeners, &mut out.problems, |m| m.sets_ssl_redirect, &msg);
        lb.ssl_redirect = None;
        if members.is_empty() {
            return;
        }
        certificates = certificates_of(&members, &listeners).unwrap_or_default();
    }

    let named_sgs = match &lb.security_groups {
        Some(wanted) => match security_groups::resolve(world.security_groups, wanted, wording) {
            Ok(ids) => ids,
            Err(message) => {
                out.problems.extend(members.iter().map(|m| problem(&m.key, message.clone())));
                return;
            }
        },
        None => BTreeSet::new(),
    };
    let backend_rules = match security_groups::backend(&lb, &named_sgs, &world.options) {
        Backend::Rules(rules) => rules,
        Backend::NeedsSharedGroup => {
            // The members that ask for it are left out; the others need no backend rules.
            let msg = format!(
                "{}: needs the shared backend security group, which --enable-backend-security-group=false turns off",
                wording.manage_backend_security_group_rules
            );
            drop_members(&mut members, &mut listeners, &mut out.problems, |m| m.sets_backend_security_group_rules, &msg);
            if members.is_empty() {
                return;
            }
            certificates = certificates_of(&members, &listeners).unwrap_or_default();
            None
        }
    };

    if rules::count(&members, &listeners, lb.ssl_redirect) > limits::MAX_RULES {
        members = rules::within_quota(members, &listeners, lb.ssl_redirect, wording.member, &mut out.problems);
        listeners::prune(&mut listeners, &members);
        if members.is_empty() {
            return;
        }
        certificates = certificates_of(&members, &listeners).unwrap_or_default();
    }

    let tags = StackTags::new(world.cluster, world.group, &members);
    let shared = listeners::Shared {
        certificates: &certificates,
        ssl_policy: lb.ssl_policy.as_deref(),
        ssl_redirect: lb.ssl_redirect,
        default_action: members.iter().find_map(|m| m.default_action.clone()).unwrap_or_else(|| Action::fixed("404")),
    };
    let listener_list = listeners::build(&listeners, &members, &shared, &tags, &mut out.warnings);
    let security_group = named_sgs.is_empty().then(|| security_groups::managed(&lb, &listeners, world.cluster, world.group, &tags));

    let mut target_groups: BTreeMap<String, TargetGroup> = BTreeMap::new();
    for m in &mut members {
        for mut tg in m.target_groups.drain(..) {
            // Its own tags (its member's and Service's), not the load balancer's.
            tg.tags = tags.own(std::mem::take(&mut tg.tags), &tg.resource_id);
            // One target group per member and Service port, as LBC (a member naming a
            // Service port twice uses one).
            target_groups.entry(tg.name.clone()).or_insert(tg);
        }
        out.warnings.append(&mut m.warnings);
    }
    // One Event per warning, however many backends share the setting that caused it.
    let mut seen = BTreeSet::new();
    out.warnings.retain(|w| seen.insert((w.ingress.clone(), w.message.clone())));
    out.stack = Some(Stack {
        group: world.group.clone(),
        load_balancer: load_balancer::build(&lb, world.cluster, world.group, subnets, named_sgs, &tags),
        security_group,
        listeners: listener_list,
        target_groups: target_groups.into_values().collect(),
        backend_rules,
    });
}

/// Leaves out the members `bad` picks, with `message`, and the listeners only they had.
fn drop_members(
    members: &mut Vec<MemberIntent>,
    listeners: &mut BTreeMap<i32, Protocol>,
    problems: &mut Vec<Problem>,
    bad: impl Fn(&MemberIntent) -> bool,
    message: &str,
) {
    members.retain(|m| {
        if bad(m) {
            problems.push(problem(&m.key, message.to_string()));
        }
        !bad(m)
    });
    listeners::prune(listeners, members);
}
