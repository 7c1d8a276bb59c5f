//! Certificates of the HTTPS listeners: every certificate the members name (the first is
//! the default); else ACM certificates discovered for the members' hosts. An exact name
//! beats a wildcard; two certificates for one host is a problem, as is none at all.

use std::collections::BTreeMap;

use super::intent::{Certificate, MemberIntent, Wording, problem};
use super::{Problem, Protocol};

/// ALB quota checked before AWS is called: certificates per listener.
pub const MAX_CERTIFICATES: usize = 25;

pub fn choose(
    found: &[Certificate],
    wording: &Wording,
    members: &[MemberIntent],
    listeners: &BTreeMap<i32, Protocol>,
) -> Result<Vec<String>, Vec<Problem>> {
    if !listeners.values().any(|p| *p == Protocol::Https) {
        return Ok(Vec::new());
    }
    let mut arns: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    for m in members {
        let mut own = arns.clone();
        for arn in &m.certificate_arns {
            if !own.contains(arn) {
                own.push(arn.clone());
            }
        }
        // The member whose certificates take the listener over the quota is at fault.
        if own.len() > MAX_CERTIFICATES {
            let msg = format!(
                "{}: with this {}'s certificates the HTTPS listener would have {}; an ALB listener allows {MAX_CERTIFICATES}",
                wording.certificate_arn,
                wording.member,
                own.len()
            );
            problems.push(problem(&m.key, msg));
            continue;
        }
        arns = own;
    }
    let https_members: Vec<&MemberIntent> = members.iter().filter(|m| m.ports.iter().any(|(p, _)| *p == Protocol::Https)).collect();
    // A host some member gave a certificate for explicitly is not discovered again: a
    // member naming no certificate must not add one that SNI could pick over the chosen
    // one (LBC #4850).
    let explicit: Vec<&Certificate> = found.iter().filter(|c| arns.contains(&c.arn)).collect();
    let mut discovered: Vec<String> = Vec::new();
    for m in https_members.iter().filter(|m| m.certificate_arns.is_empty()) {
        for host in &m.certificate_hosts {
            if explicit.iter().any(|c| covers(c, host)) {
                continue;
            }
            match certificate_for(found, host, wording) {
                Ok(arn) if !arns.contains(&arn) && !discovered.contains(&arn) => discovered.push(arn),
                Ok(_) => {}
                Err(message) => problems.push(problem(&m.key, message)),
            }
        }
    }
    // Discovered ones after the explicit ones, sorted (as LBC orders them).
    discovered.sort();
    arns.extend(discovered);
    if problems.is_empty() && arns.is_empty() {
        let msg = format!("no certificate for the HTTPS listener: {}", wording.certificate_hint);
        problems.extend(https_members.iter().map(|m| problem(&m.key, msg.clone())));
    }
    if arns.len() > MAX_CERTIFICATES {
        let msg = format!("the HTTPS listener would have {} certificates; an ALB listener allows {MAX_CERTIFICATES}", arns.len());
        problems.extend(https_members.iter().map(|m| problem(&m.key, msg.clone())));
    }
    if problems.is_empty() { Ok(arns) } else { Err(problems) }
}

/// Whether a certificate's names cover a host (exactly, or by a one-level wildcard).
fn covers(cert: &Certificate, host: &str) -> bool {
    cert.domains.iter().any(|d| d.eq_ignore_ascii_case(host) || wildcard_covers(d, host))
}

fn wildcard_covers(domain: &str, host: &str) -> bool {
    domain.strip_prefix("*.").is_some_and(|rest| host.split_once('.').is_some_and(|(_, h)| h.eq_ignore_ascii_case(rest)))
}

fn certificate_for(certs: &[Certificate], host: &str, wording: &Wording) -> Result<String, String> {
    let host = host.to_ascii_lowercase();
    let exact: Vec<&Certificate> = certs.iter().filter(|c| c.domains.iter().any(|d| d.eq_ignore_ascii_case(&host))).collect();
    let wildcard: Vec<&Certificate> = certs.iter().filter(|c| c.domains.iter().any(|d| wildcard_covers(d, &host))).collect();
    let chosen = if exact.is_empty() { wildcard } else { exact };
    match chosen.as_slice() {
        [one] => Ok(one.arn.clone()),
        [] => Err(format!("no ISSUED ACM certificate matches host {host}")),
        many => Err(format!(
            "{} ACM certificates match host {host} ({}); set {} to choose",
            many.len(),
            many.iter().map(|c| c.arn.as_str()).collect::<Vec<_>>().join(", "),
            wording.certificate_arn
        )),
    }
}
