//! Listeners, matched by port: created tagged, modified in place (protocol, default
//! action, default certificate, SSL policy), SNI certificates added/removed, deleted
//! when no longer wanted; then each listener's rules.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{Certificate, Listener as SdkListener, ProtocolEnum};

use super::attributes::{self, Owner};
use super::rule::{self, ActualRule, action_from_sdk, action_to_sdk};
use super::{Error, elbv2_tags};
use crate::aws::{Aws, paginate};
use crate::model::{Action, Listener, Rule, Tags, WeightedTargetGroup};

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

fn default_certificate(d: &Listener) -> Option<Certificate> {
    d.certificates.first().map(|arn| Certificate::builder().certificate_arn(arn).build())
}

pub async fn sync(
    aws: &Aws,
    lb_arn: &str,
    desired: &[Listener],
    tg_arns: &BTreeMap<String, String>,
    actual: &mut Vec<ActualListener>,
) -> Result<(), Error> {
    for d in desired {
        let default_action = resolve(&d.default_action, tg_arns);
        let idx = match actual.iter().position(|a| a.port == d.port) {
            Some(i) => {
                let a = &mut actual[i];
                if a.protocol != d.protocol.as_str()
                    || a.default_action.as_ref() != Some(&default_action)
                    || a.default_certificate.as_ref() != d.certificates.first()
                    || a.ssl_policy != d.ssl_policy
                {
                    aws.call(ELBV2, "ModifyListener", || {
                        aws.elbv2
                            .modify_listener()
                            .listener_arn(&a.arn)
                            .port(d.port)
                            .protocol(ProtocolEnum::from(d.protocol.as_str()))
                            .set_certificates(default_certificate(d).map(|c| vec![c]))
                            .set_ssl_policy(d.ssl_policy.clone())
                            .default_actions(action_to_sdk(&default_action))
                            .send()
                    })
                    .await?;
                    a.protocol = d.protocol.as_str().to_string();
                    a.default_action = Some(default_action);
                    a.default_certificate = d.certificates.first().cloned();
                    a.ssl_policy = d.ssl_policy.clone();
                }
                i
            }
            None => {
                let out = aws
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
                    .await?;
                let arn = out.listeners().first().and_then(|l| l.listener_arn()).unwrap_or_default().to_string();
                tracing::info!(%arn, port = d.port, "created listener");
                actual.push(ActualListener {
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
                actual.len() - 1
            }
        };
        let listener = &mut actual[idx];
        sync_sni_certificates(aws, d, listener).await?;
        attributes::sync(aws, Owner::Listener(&listener.arn), &d.attributes, &mut listener.attributes, false).await?;
        let rules: Vec<Rule> = d.rules.iter().map(|r| Rule { action: resolve(&r.action, tg_arns), ..r.clone() }).collect();
        rule::sync(aws, &listener.arn, &rules, &mut listener.rules).await?;
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
    Ok(())
}

/// Certificates beyond the default one are served by SNI.
async fn sync_sni_certificates(aws: &Aws, d: &Listener, a: &mut ActualListener) -> Result<(), Error> {
    let desired: BTreeSet<String> = d.certificates.iter().skip(1).cloned().collect();
    let add: Vec<Certificate> =
        desired.difference(&a.sni_certificates).map(|arn| Certificate::builder().certificate_arn(arn).build()).collect();
    let remove: Vec<Certificate> =
        a.sni_certificates.difference(&desired).map(|arn| Certificate::builder().certificate_arn(arn).build()).collect();
    if !add.is_empty() {
        aws.call(ELBV2, "AddListenerCertificates", || {
            aws.elbv2.add_listener_certificates().listener_arn(&a.arn).set_certificates(Some(add.clone())).send()
        })
        .await?;
    }
    if !remove.is_empty() {
        aws.call(ELBV2, "RemoveListenerCertificates", || {
            aws.elbv2.remove_listener_certificates().listener_arn(&a.arn).set_certificates(Some(remove.clone())).send()
        })
        .await?;
    }
    a.sni_certificates = desired;
    Ok(())
}
