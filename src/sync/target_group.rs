//! Target groups: matched as LBC matches them, by their `ingress.k8s.aws/resource` tag
//! (so target groups LBC made are adopted whatever their name), replaced only when a field
//! that cannot change in place differs; created tagged, health checks modified in place,
//! deleted last.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetGroup as SdkTargetGroup, TargetHealthStateEnum, TargetTypeEnum};

use super::attributes::{self, Owner};
use super::{Error, Target, elbv2_tags};
use crate::aws::Aws;
use crate::model::{self, HealthCheck, Protocol, Tags, TargetGroup, TargetType};

const ELBV2: &str = "elasticloadbalancingv2";

#[derive(Clone, Debug)]
pub struct ActualTargetGroup {
    pub arn: String,
    pub name: String,
    /// The `ingress.k8s.aws/resource` tag.
    pub resource: Option<String>,
    pub target_type: TargetType,
    pub protocol: Protocol,
    /// `None` when AWS does not say.
    pub protocol_version: Option<String>,
    pub health_check: HealthCheck,
    /// `None` until read (only read when attributes are wanted).
    pub attributes: Option<Tags>,
    /// Registered targets, draining ones excluded.
    pub targets: BTreeSet<model::Target>,
}

impl ActualTargetGroup {
    /// Whether this target group is the one `desired` describes: the same resource tag
    /// and nothing that cannot change in place differs (LBC's replacement rule).
    pub fn serves(&self, desired: &TargetGroup) -> bool {
        self.resource.as_deref() == Some(desired.resource_id.as_str())
            && self.target_type == desired.target_type
            && self.protocol == desired.protocol
            && self.protocol_version.as_ref().is_none_or(|v| v.eq_ignore_ascii_case(&desired.protocol_version))
    }
}

fn protocol(p: Option<&ProtocolEnum>) -> Protocol {
    match p {
        Some(ProtocolEnum::Https) => Protocol::Https,
        _ => Protocol::Http,
    }
}

fn is_grpc(protocol_version: &str) -> bool {
    protocol_version.eq_ignore_ascii_case("GRPC")
}

/// gRPC target groups take gRPC codes (`GrpcCode`); AWS refuses an HTTP code for them.
fn matcher(protocol_version: &str, codes: &str) -> Matcher {
    if is_grpc(protocol_version) { Matcher::builder().grpc_code(codes).build() } else { Matcher::builder().http_code(codes).build() }
}

/// The codes of a described matcher, read from the field its protocol version uses.
fn success_codes(tg: &SdkTargetGroup) -> String {
    let m = tg.matcher();
    let codes = if tg.protocol_version().is_some_and(is_grpc) { m.and_then(|m| m.grpc_code()) } else { m.and_then(|m| m.http_code()) };
    codes.unwrap_or_default().to_string()
}

fn health_check_from_sdk(tg: &SdkTargetGroup) -> HealthCheck {
    HealthCheck {
        protocol: protocol(tg.health_check_protocol()),
        port: tg.health_check_port().unwrap_or("traffic-port").to_string(),
        path: tg.health_check_path().unwrap_or("/").to_string(),
        interval_seconds: tg.health_check_interval_seconds().unwrap_or_default(),
        timeout_seconds: tg.health_check_timeout_seconds().unwrap_or_default(),
        healthy_threshold: tg.healthy_threshold_count().unwrap_or_default(),
        unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or_default(),
        success_codes: success_codes(tg),
    }
}

pub async fn read(aws: &Aws, tgs: Vec<(SdkTargetGroup, Tags)>) -> Result<Vec<ActualTargetGroup>, Error> {
    let mut out = Vec::new();
    for (tg, tags) in tgs {
        let arn = tg.target_group_arn().unwrap_or_default().to_string();
        let targets = read_targets(aws, &arn).await?;
        out.push(ActualTargetGroup {
            name: tg.target_group_name().unwrap_or_default().to_string(),
            resource: model::resource_of(&tags).cloned(),
            target_type: match tg.target_type() {
                Some(TargetTypeEnum::Instance) => TargetType::Instance,
                _ => TargetType::Ip,
            },
            protocol: protocol(tg.protocol()),
            protocol_version: tg.protocol_version().map(str::to_string),
            health_check: health_check_from_sdk(&tg),
            attributes: None,
            targets,
            arn,
        });
    }
    Ok(out)
}

async fn read_targets(aws: &Aws, arn: &str) -> Result<BTreeSet<model::Target>, Error> {
    let out = aws.call(ELBV2, "DescribeTargetHealth", || aws.elbv2.describe_target_health().target_group_arn(arn).send()).await?;
    Ok(out
        .target_health_descriptions
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.target_health().and_then(|h| h.state()) != Some(&TargetHealthStateEnum::Draining))
        .filter_map(|d| {
            let t = d.target?;
            Some(model::Target { id: t.id?, port: t.port.unwrap_or_default() })
        })
        .collect())
}

/// Creates the desired target groups that do not exist and fixes health checks of those
/// that do. Returns name → ARN for every desired target group.
pub async fn create_missing(
    t: &Target<'_>,
    stack: &str,
    desired: &[TargetGroup],
    actual: &mut Vec<ActualTargetGroup>,
) -> Result<BTreeMap<String, String>, Error> {
    let aws = t.aws;
    let mut arns = BTreeMap::new();
    for d in desired {
        // A new target group's attributes are all set (none is read); a found one's are read.
        let (i, fresh) = match actual.iter().position(|a| a.serves(d)) {
            Some(i) => (i, false),
            None => {
                let (created, fresh) = create_or_adopt(t, stack, d).await?;
                actual.push(created);
                (actual.len() - 1, fresh)
            }
        };
        let a = &mut actual[i];
        if a.health_check != d.health_check {
            let hc = &d.health_check;
            aws.call(ELBV2, "ModifyTargetGroup", || {
                aws.elbv2
                    .modify_target_group()
                    .target_group_arn(&a.arn)
                    .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
                    .health_check_port(&hc.port)
                    .health_check_path(&hc.path)
                    .health_check_interval_seconds(hc.interval_seconds)
                    .health_check_timeout_seconds(hc.timeout_seconds)
                    .healthy_threshold_count(hc.healthy_threshold)
                    .unhealthy_threshold_count(hc.unhealthy_threshold)
                    .matcher(matcher(&d.protocol_version, &hc.success_codes))
                    .send()
            })
            .await?;
            a.health_check = hc.clone();
        }
        attributes::sync(aws, Owner::TargetGroup(&a.arn), &d.attributes, &mut a.attributes, fresh).await?;
        arns.insert(d.name.clone(), a.arn.clone());
    }
    Ok(arns)
}

/// Creates the target group, or adopts the one an earlier create whose reply was lost made:
/// AWS answers a create identical to an earlier one with the existing group (which is why
/// the health check is taken from the answer, not assumed), and one that differs with
/// `DuplicateTargetGroupName`, when it is found by name and adopted if it is this stack's.
/// Returns it and whether it is new (its attributes all AWS's defaults).
async fn create_or_adopt(t: &Target<'_>, stack: &str, d: &TargetGroup) -> Result<(ActualTargetGroup, bool), Error> {
    let aws = t.aws;
    let hc = &d.health_check;
    let created = aws
        .call(ELBV2, "CreateTargetGroup", || {
            aws.elbv2
                .create_target_group()
                .name(&d.name)
                .protocol(ProtocolEnum::from(d.protocol.as_str()))
                .protocol_version(&d.protocol_version)
                .port(d.port)
                .vpc_id(t.vpc_id)
                .target_type(match d.target_type {
                    TargetType::Ip => TargetTypeEnum::Ip,
                    TargetType::Instance => TargetTypeEnum::Instance,
                })
                .health_check_enabled(true)
                .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
                .health_check_port(&hc.port)
                .health_check_path(&hc.path)
                .health_check_interval_seconds(hc.interval_seconds)
                .health_check_timeout_seconds(hc.timeout_seconds)
                .healthy_threshold_count(hc.healthy_threshold)
                .unhealthy_threshold_count(hc.unhealthy_threshold)
                .matcher(matcher(&d.protocol_version, &hc.success_codes))
                .set_tags(Some(elbv2_tags(&d.tags)))
                .send()
        })
        .await;
    match created {
        Ok(out) => {
            let tg =
                out.target_groups.unwrap_or_default().into_iter().next().ok_or(crate::aws::Error::Response {
                    operation: "CreateTargetGroup",
                    what: "no target group in the response".into(),
                })?;
            let arn = tg.target_group_arn().unwrap_or_default().to_string();
            tracing::info!(%arn, name = %d.name, "created target group");
            t.inventory.put_target_group(stack, tg.clone(), d.tags.clone()).await;
            let created = ActualTargetGroup {
                arn,
                name: d.name.clone(),
                resource: Some(d.resource_id.clone()),
                target_type: d.target_type,
                protocol: d.protocol,
                protocol_version: Some(d.protocol_version.clone()),
                health_check: health_check_from_sdk(&tg),
                attributes: None,
                targets: BTreeSet::new(),
            };
            Ok((created, true))
        }
        Err(e) if e.is_code(&["DuplicateTargetGroupName"]) => {
            let found = aws
                .call(ELBV2, "DescribeTargetGroups", || aws.elbv2.describe_target_groups().names(&d.name).send())
                .await?
                .target_groups
                .unwrap_or_default()
                .into_iter()
                .next()
                .ok_or(e)?;
            let arn = found.target_group_arn().unwrap_or_default().to_string();
            let tags = super::read_tags(aws, &arn).await?;
            let owner = super::owner_tags(&d.tags);
            let adopted = match read(aws, vec![(found.clone(), tags.clone())]).await?.pop() {
                Some(a) if super::ours(&tags, &owner) && a.serves(d) => a,
                _ => return Err(Error::not_ours("target group", &d.name, &arn, &owner)),
            };
            tracing::info!(%arn, name = %d.name, "adopted the target group an earlier create made (its reply was lost)");
            t.inventory.put_target_group(stack, found, tags).await;
            Ok((adopted, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes target groups that are not desired any more.
pub async fn delete_unwanted(
    t: &Target<'_>,
    stack: &str,
    desired: &[TargetGroup],
    actual: &mut Vec<ActualTargetGroup>,
) -> Result<(), Error> {
    let aws = t.aws;
    let mut kept = Vec::new();
    // Each desired target group keeps the first that serves it (as create_missing chose).
    let mut claimed = vec![false; desired.len()];
    let mut rest = std::mem::take(actual).into_iter();
    while let Some(a) = rest.next() {
        if let Some(i) = desired.iter().enumerate().position(|(i, d)| !claimed[i] && a.serves(d)) {
            claimed[i] = true;
            kept.push(a);
            continue;
        }
        match aws.call(ELBV2, "DeleteTargetGroup", || aws.elbv2.delete_target_group().target_group_arn(&a.arn).send()).await {
            Ok(_) => tracing::info!(arn = %a.arn, "deleted target group"),
            Err(e) if e.is_code(&["TargetGroupNotFound"]) => {}
            Err(e) => {
                kept.push(a);
                kept.extend(rest);
                *actual = kept;
                return Err(e.into());
            }
        }
        t.inventory.remove_target_group(stack, &a.arn).await;
    }
    *actual = kept;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjKey, TargetSource};

    fn health_check() -> HealthCheck {
        HealthCheck {
            protocol: Protocol::Http,
            port: "traffic-port".into(),
            path: "/".into(),
            interval_seconds: 15,
            timeout_seconds: 5,
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            success_codes: "200".into(),
        }
    }

    fn desired() -> TargetGroup {
        TargetGroup {
            resource_id: "shop/shop-web:80".into(),
            name: "k8s-shop-web-0123456789".into(),
            protocol: Protocol::Http,
            protocol_version: "HTTP1".into(),
            port: 8080,
            target_type: TargetType::Ip,
            health_check: health_check(),
            attributes: Tags::new(),
            targets: None,
            source: TargetSource::Endpoints {
                service: ObjKey { namespace: "shop".into(), name: "web".into() },
                port_name: None,
                publish_not_ready: false,
            },
            tags: Tags::new(),
        }
    }

    fn actual() -> ActualTargetGroup {
        ActualTargetGroup {
            arn: "arn:tg".into(),
            // Another name, as older LBC versions named target groups.
            name: "k8s-shop-web-legacyname".into(),
            resource: Some("shop/shop-web:80".into()),
            target_type: TargetType::Ip,
            protocol: Protocol::Http,
            protocol_version: Some("HTTP1".into()),
            health_check: health_check(),
            attributes: None,
            targets: BTreeSet::new(),
        }
    }

    #[test]
    fn a_target_group_is_matched_by_its_resource_tag_whatever_its_name() {
        assert!(actual().serves(&desired()));
        assert!(ActualTargetGroup { protocol_version: None, ..actual() }.serves(&desired()), "AWS did not say: kept");
        assert!(!ActualTargetGroup { resource: Some("shop/other-web:80".into()), ..actual() }.serves(&desired()));
        assert!(!ActualTargetGroup { resource: None, ..actual() }.serves(&desired()), "untagged: not ours");
    }

    #[test]
    fn grpc_target_groups_use_grpc_codes() {
        let m = matcher("GRPC", "12");
        assert_eq!((m.grpc_code(), m.http_code()), (Some("12"), None));
        let m = matcher("HTTP1", "200-299");
        assert_eq!((m.grpc_code(), m.http_code()), (None, Some("200-299")));
        let described = |version: &str, m: Matcher| SdkTargetGroup::builder().protocol_version(version).matcher(m).build();
        assert_eq!(success_codes(&described("GRPC", Matcher::builder().grpc_code("0-5").build())), "0-5");
        assert_eq!(success_codes(&described("HTTP2", Matcher::builder().http_code("200").build())), "200");
        // An LBC-made or hand-edited gRPC group read back the same way it is written.
        assert_eq!(success_codes(&described("GRPC", Matcher::builder().http_code("200").build())), "");
    }

    #[test]
    fn what_cannot_change_in_place_makes_a_new_target_group() {
        assert!(!ActualTargetGroup { target_type: TargetType::Instance, ..actual() }.serves(&desired()));
        assert!(!ActualTargetGroup { protocol: Protocol::Https, ..actual() }.serves(&desired()));
        assert!(!ActualTargetGroup { protocol_version: Some("GRPC".into()), ..actual() }.serves(&desired()));
        // The port is only the default of targets registered with their own port: kept.
        assert!(actual().serves(&TargetGroup { port: 9090, ..desired() }));
    }
}
