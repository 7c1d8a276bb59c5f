//! Listeners, matched by port: created tagged, modified in place (protocol, default
//! action, default certificate, SSL policy), SNI certificates added/removed (the default
//! certificate's own entry in the list left alone), deleted when no longer wanted; then
//! each listener's rules, even when a listener step failed (that error is returned after).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{Certificate, Listener as SdkListener, ProtocolEnum};

use super::attributes::{self, Owner};
use super::rule::{self, ActualRule, action_from_sdk, action_to_sdk, same_action};
use super::{Error, elbv2_tags};
use crate::aws::{Aws, paginate};
use crate::model::{Action, Listener, Problem, Protocol, Rule, Tags, WeightedTargetGroup};

const ELBV2: &str = "elasticloadbalancingv2";

#[derive(Clone, Debug)]
pub struct ActualListener {
    pub arn: String,
    pub port: i32,
    pub protocol: String,
    pub default_action: Option<Action>,
    pub ssl_policy: Option<String>,
    pub default_certificate: Option<String>,
    pub sni_certificates: BTreeSet<String>,
    /// `None` until read (only read when attributes are wanted).
    pub attributes: Option<Tags>,
    pub rules: Vec<ActualRule>,
}

pub async fn read(aws: &Aws, lb_arn: &str) -> Result<Vec<ActualListener>, Error> {
    let listeners: Vec<SdkListener> = paginate(|marker| async move {
        let out = aws
            .call(ELBV2, "DescribeListeners", || aws.elbv2.describe_listeners().load_balancer_arn(lb_arn).set_marker(marker.clone()).send())
            .await?;
        Ok((out.listeners.unwrap_or_default(), out.next_marker))
    })
    .await?;
    let mut out = Vec::new();
    for l in listeners {
        let arn = l.listener_arn().unwrap_or_default().to_string();
        let https = l.protocol() == Some(&ProtocolEnum::Https);
        let mut sni_certificates = BTreeSet::new();
        if https {
            let certs = paginate(|marker| {
                let arn = arn.clone();
                async move {
                    let out = aws
                        .call(ELBV2, "DescribeListenerCertificates", || {
                            aws.elbv2.describe_listener_certificates().listener_arn(&arn).set_marker(marker.clone()).send()
                        })
                        .await?;
                    Ok((out.certificates.unwrap_or_default(), out.next_marker))
                }
            })
            .await?;
            sni_certificates =
                certs.iter().filter(|c| !c.is_default().unwrap_or(false)).filter_map(|c| c.certificate_arn().map(str::to_string)).collect();
        }
        out.push(ActualListener {
            rules: rule::read(aws, &arn).await?,
            port: l.port().unwrap_or_default(),
            protocol: l.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
            default_action: action_from_sdk(l.default_actions()),
            ssl_policy: l.ssl_policy().map(str::to_string),
            default_certificate: l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_string),
            sni_certificates,
            attributes: None,
            arn,
        });
    }
    Ok(out)
}

/// Replaces target group names with their ARNs.
fn resolve(action: &Action, tg_arns: &BTreeMap<String, String>) -> Action {
    match action {
        Action::Forward { target_groups, stickiness_seconds } => Action::Forward {
            target_groups: target_groups
                .iter()
                .map(|t| WeightedTargetGroup {
                    target_group: tg_arns.get(&t.target_group).cloned().unwrap_or_else(|| t.target_group.clone()),
                    weight: t.weight,
                })
                .collect(),
            stickiness_seconds: *stickiness_seconds,
        },
        other => other.clone(),
    }
}

/// Whether ModifyListener is needed to make `a` what `d` describes. Only what the
/// protocol makes meaningful is compared: an HTTP listener has no SSL policy nor
/// certificate, whatever AWS (or the emulator) describes for it.
fn needs_modify(a: &ActualListener, d: &Listener, default_action: &Action) -> bool {
    if a.protocol != d.protocol.as_str() || !a.default_action.as_ref().is_some_and(|x| same_action(x, default_action)) {
        return true;
    }
    d.protocol == Protocol::Https && (a.default_certificate.as_ref() != d.certificates.first() || a.ssl_policy != d.ssl_policy)
}

fn default_certificate(d: &Listener) -> Option<Certificate> {
    d.certificates.first().map(|arn| Certificate::builder().certificate_arn(arn).build())
}

/// The annotations behind each listener step, for the message of a failed step.
const SETTINGS: &str =
    "default action or certificate (annotations alb.ingress.kubernetes.io/certificate-arn, ssl-policy, ssl-redirect, defaultBackend)";
const CERTIFICATES: &str = "certificates (annotation alb.ingress.kubernetes.io/certificate-arn)";

pub async fn sync(
    aws: &Aws,
    lb_arn: &str,
    desired: &[Listener],
    tg_arns: &BTreeMap<String, String>,
    actual: &mut Vec<ActualListener>,
    remarks: &mut Vec<Problem>,
) -> Result<(), Error> {
    // A failing listener step (settings, certificates, attributes) must not hold back the
    // rules: it is reported once the rules have converged, and retried then.
    let mut failed: Option<Error> = None;
    let mut defer = |d: &Listener, what: String, e: crate::aws::Error| {
        tracing::warn!(port = d.port, what = %crate::telemetry::Excerpt(&what), error = %crate::telemetry::Excerpt(&e), "listener step failed; rules are synced all the same");
        failed.get_or_insert(Error::Listener { protocol: d.protocol.as_str().to_string(), port: d.port, what, source: e });
    };
    for d in desired {
        let default_action = resolve(&d.default_action, tg_arns);
        let idx = match actual.iter().position(|a| a.port == d.port) {
            Some(i) => {
                let a = &mut actual[i];
                if needs_modify(a, d, &default_action)
                    && let Err(e) = modify_settings(aws, a, d, default_action).await
                {
                    defer(d, SETTINGS.to_string(), e);
                }
                i
            }
            None => {
                actual.push(create_or_adopt(aws, lb_arn, d, default_action).await?);
                actual.len() - 1
            }
        };
        let listener = &mut actual[idx];
        if let Err(e) = sync_sni_certificates(aws, d, listener).await {
            defer(d, CERTIFICATES.to_string(), e);
        }
        match attributes::sync(aws, Owner::Listener(&listener.arn), &d.attributes, &mut listener.attributes, false).await {
            Ok(()) => {}
            Err(Error::Aws(e)) => {
                let annotation = format!("alb.ingress.kubernetes.io/listener-attributes.{}-{}", d.protocol.as_str(), d.port);
                defer(d, format!("attributes (annotation {annotation})"), e);
            }
            Err(e) => return Err(e),
        }
        let rules: Vec<Rule> = d.rules.iter().map(|r| Rule { action: resolve(&r.action, tg_arns), ..r.clone() }).collect();
        let on = format!("{}:{}", d.protocol.as_str(), d.port);
        rule::sync(aws, &listener.arn, &on, &rules, &mut listener.rules, remarks).await?;
    }
    let mut kept = Vec::new();
    for a in actual.drain(..) {
        if desired.iter().any(|d| d.port == a.port) {
            kept.push(a);
            continue;
        }
        match aws.call(ELBV2, "DeleteListener", || aws.elbv2.delete_listener().listener_arn(&a.arn).send()).await {
            Ok(_) => tracing::info!(arn = %a.arn, "deleted listener"),
            Err(e) if e.is_code(&["ListenerNotFound"]) => {}
            Err(e) => return Err(e.into()),
        }
    }
    *actual = kept;
    failed.map_or(Ok(()), Err)
}

/// Creates the listener. AWS answers a create identical to an earlier one with the existing
/// listener, and one that differs with `DuplicateListener`: an earlier create whose reply was
/// lost made it. Then the listener on the port (of our load balancer, so ours) is adopted
/// and given the desired settings in one ModifyListener (this only follows a lost reply).
async fn create_or_adopt(aws: &Aws, lb_arn: &str, d: &Listener, default_action: Action) -> Result<ActualListener, Error> {
    let created = aws
        .call(ELBV2, "CreateListener", || {
            aws.elbv2
                .create_listener()
                .load_balancer_arn(lb_arn)
                .port(d.port)
                .protocol(ProtocolEnum::from(d.protocol.as_str()))
                .set_certificates(default_certificate(d).map(|c| vec![c]))
                .set_ssl_policy(d.ssl_policy.clone())
                .default_actions(action_to_sdk(&default_action))
                .set_tags(Some(elbv2_tags(&d.tags)))
                .send()
        })
        .await;
    let mut listener = match created {
        Ok(out) => {
            let arn = out.listeners().first().and_then(|l| l.listener_arn()).unwrap_or_default().to_string();
            tracing::info!(%arn, port = d.port, "created listener");
            return Ok(ActualListener {
                arn,
                port: d.port,
                protocol: d.protocol.as_str().to_string(),
                default_action: Some(default_action),
                ssl_policy: d.ssl_policy.clone(),
                default_certificate: d.certificates.first().cloned(),
                sni_certificates: BTreeSet::new(),
                attributes: None,
                rules: Vec::new(),
            });
        }
        Err(e) if e.is_code(&["DuplicateListener"]) => match read(aws, lb_arn).await?.into_iter().find(|l| l.port == d.port) {
            Some(found) => found,
            None => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    tracing::info!(arn = %listener.arn, port = d.port, "adopted the listener an earlier create made (its reply was lost)");
    modify_settings(aws, &mut listener, d, default_action).await?;
    Ok(listener)
}

/// Gives the listener `desired`'s protocol, default certificate, SSL policy and default
/// action in one ModifyListener, and records them on success.
async fn modify_settings(aws: &Aws, actual: &mut ActualListener, d: &Listener, default_action: Action) -> Result<(), crate::aws::Error> {
    aws.call(ELBV2, "ModifyListener", || {
        aws.elbv2
            .modify_listener()
            .listener_arn(&actual.arn)
            .port(d.port)
            .protocol(ProtocolEnum::from(d.protocol.as_str()))
            .set_certificates(default_certificate(d).map(|c| vec![c]))
            .set_ssl_policy(d.ssl_policy.clone())
            .default_actions(action_to_sdk(&default_action))
            .send()
    })
    .await?;
    actual.protocol = d.protocol.as_str().to_string();
    actual.default_action = Some(default_action);
    actual.default_certificate = d.certificates.first().cloned();
    actual.ssl_policy = d.ssl_policy.clone();
    Ok(())
}

/// The certificate list changes that make `actual` serve `desired`'s SNI certificates:
/// (to add, to remove). The default certificate's own entry in the list is never removed
/// (LBC since v3.4.1 adds it there; AWS refuses to remove it) and never added by us.
fn certificate_changes(desired: &Listener, actual: &ActualListener) -> (Vec<String>, Vec<String>) {
    let default = actual.default_certificate.as_ref();
    let wanted: BTreeSet<&String> = desired.certificates.iter().skip(1).filter(|c| Some(*c) != default).collect();
    let add = wanted.iter().filter(|c| !actual.sni_certificates.contains(**c)).map(|c| c.to_string()).collect();
    let remove = actual.sni_certificates.iter().filter(|c| !wanted.contains(c) && Some(*c) != default).cloned().collect();
    (add, remove)
}

/// Certificates beyond the default one are served by SNI. One certificate a call, as the
/// API reference says; each success is recorded at once, so a failure leaves `a` true.
async fn sync_sni_certificates(aws: &Aws, d: &Listener, a: &mut ActualListener) -> Result<(), crate::aws::Error> {
    let (add, remove) = certificate_changes(d, a);
    for arn in add {
        let cert = Certificate::builder().certificate_arn(&arn).build();
        aws.call(ELBV2, "AddListenerCertificates", || {
            aws.elbv2.add_listener_certificates().listener_arn(&a.arn).certificates(cert.clone()).send()
        })
        .await?;
        a.sni_certificates.insert(arn);
    }
    for arn in remove {
        let cert = Certificate::builder().certificate_arn(&arn).build();
        aws.call(ELBV2, "RemoveListenerCertificates", || {
            aws.elbv2.remove_listener_certificates().listener_arn(&a.arn).certificates(cert.clone()).send()
        })
        .await?;
        a.sni_certificates.remove(&arn);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(certificates: &[&str]) -> Listener {
        Listener {
            port: 443,
            protocol: Protocol::Https,
            certificates: certificates.iter().map(|c| c.to_string()).collect(),
            ssl_policy: Some("ELBSecurityPolicy-2016-08".into()),
            attributes: Tags::new(),
            default_action: Action::fixed("404"),
            rules: Vec::new(),
            tags: Tags::new(),
        }
    }

    fn actual(default: &str, listed: &[&str]) -> ActualListener {
        ActualListener {
            arn: "arn:listener".into(),
            port: 443,
            protocol: "HTTPS".into(),
            default_action: Some(Action::fixed("404")),
            ssl_policy: Some("ELBSecurityPolicy-2016-08".into()),
            default_certificate: Some(default.into()),
            sni_certificates: listed.iter().map(|c| c.to_string()).collect(),
            attributes: None,
            rules: Vec::new(),
        }
    }

    #[test]
    fn the_default_certificate_listed_by_lbc_is_left_alone() {
        // LBC v3.4.1+ also puts the default certificate in the listener's certificate list.
        assert_eq!(certificate_changes(&desired(&["a"]), &actual("a", &["a"])), (vec![], vec![]));
        assert_eq!(certificate_changes(&desired(&["a", "b"]), &actual("a", &["a", "b"])), (vec![], vec![]));
        assert_eq!(certificate_changes(&desired(&["a"]), &actual("a", &["a", "b"])), (vec![], vec!["b".to_string()]));
    }

    #[test]
    fn http_listeners_ignore_the_ssl_policy_and_certificate_aws_describes() {
        let mut d = desired(&[]);
        (d.port, d.protocol, d.ssl_policy) = (80, Protocol::Http, None);
        let mut a = actual("arn:cert", &[]);
        (a.port, a.protocol) = (80, "HTTP".into());
        assert!(!needs_modify(&a, &d, &Action::fixed("404")), "an SslPolicy on an HTTP listener is no difference");
        assert!(needs_modify(&a, &d, &Action::fixed("503")));
        let https = desired(&["arn:cert"]);
        let mut a = actual("arn:cert", &[]);
        assert!(!needs_modify(&a, &https, &Action::fixed("404")));
        a.ssl_policy = Some("ELBSecurityPolicy-TLS13-1-2-2021-06".into());
        assert!(needs_modify(&a, &https, &Action::fixed("404")), "on HTTPS the policy counts");
    }

    #[test]
    fn sni_certificates_are_added_and_removed() {
        assert_eq!(certificate_changes(&desired(&["a", "b", "c"]), &actual("a", &["b"])), (vec!["c".to_string()], vec![]));
        // After the default moved from a to b, a is an SNI certificate like any other.
        assert_eq!(certificate_changes(&desired(&["b"]), &actual("b", &["a", "b"])), (vec![], vec!["a".to_string()]));
    }
}
