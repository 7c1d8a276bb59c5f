//! The managed security group of the load balancer: created tagged, its inbound
//! rules kept equal to the listener ports × inbound CIDRs.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification};

use super::{Error, Target};
use crate::aws::ec2_filter;
use crate::model::{self, Permission, SecurityGroup};

const EC2: &str = "ec2";

#[derive(Clone, Debug)]
pub struct ActualSecurityGroup {
    pub id: String,
    pub ingress: BTreeSet<Permission>,
}

/// The managed security group the inventory found for the stack, with its current rules
/// (read fresh: no call at all for a stack that has none yet).
pub async fn read(t: &Target<'_>, ids: &[String]) -> Result<Option<ActualSecurityGroup>, Error> {
    if ids.is_empty() {
        return Ok(None);
    }
    let out = match t
        .aws
        .call(EC2, "DescribeSecurityGroups", || t.aws.ec2.describe_security_groups().set_group_ids(Some(ids.to_vec())).send())
        .await
    {
        Ok(out) => out,
        Err(e) if e.is_code(&["InvalidGroup.NotFound"]) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(out.security_groups.unwrap_or_default().into_iter().next().map(|sg| ActualSecurityGroup {
        id: sg.group_id.unwrap_or_default(),
        ingress: sg.ip_permissions.unwrap_or_default().iter().flat_map(permissions_from_sdk).collect(),
    }))
}

fn permissions_from_sdk(p: &IpPermission) -> Vec<Permission> {
    let base = |cidr: &str| Permission {
        protocol: p.ip_protocol().unwrap_or_default().to_string(),
        from_port: p.from_port().unwrap_or_default(),
        to_port: p.to_port().unwrap_or_default(),
        cidr: cidr.to_string(),
    };
    p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6())).map(base).collect()
}

fn permission_to_sdk(p: &Permission) -> IpPermission {
    let b = IpPermission::builder().ip_protocol(&p.protocol).from_port(p.from_port).to_port(p.to_port);
    if p.cidr.contains(':') {
        b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(&p.cidr).build()).build()
    } else {
        b.ip_ranges(IpRange::builder().cidr_ip(&p.cidr).build()).build()
    }
}

/// Inbound rules to add and to remove.
pub fn diff(actual: &BTreeSet<Permission>, desired: &BTreeSet<Permission>) -> (Vec<Permission>, Vec<Permission>) {
    (desired.difference(actual).cloned().collect(), actual.difference(desired).cloned().collect())
}

/// Ensures the group exists with exactly the desired inbound rules; returns its ID.
pub async fn sync(t: &Target<'_>, desired: &SecurityGroup, actual: &mut Option<ActualSecurityGroup>) -> Result<String, Error> {
    let aws = t.aws;
    if actual.is_none() {
        let sg = create_or_adopt(t, desired).await?;
        if let Some(stack) = model::stack_key(&desired.tags) {
            t.inventory.put_security_group(&stack, sg.id.clone()).await;
        }
        *actual = Some(sg);
    }
    let sg = actual.as_mut().expect("set above");
    let (add, remove) = diff(&sg.ingress, &desired.ingress);
    if !add.is_empty() {
        let perms: Vec<IpPermission> = add.iter().map(permission_to_sdk).collect();
        match aws
            .call(EC2, "AuthorizeSecurityGroupIngress", || {
                aws.ec2.authorize_security_group_ingress().group_id(&sg.id).set_ip_permissions(Some(perms.clone())).send()
            })
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_code(&["InvalidPermission.Duplicate"]) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !remove.is_empty() {
        let perms: Vec<IpPermission> = remove.iter().map(permission_to_sdk).collect();
        match aws
            .call(EC2, "RevokeSecurityGroupIngress", || {
                aws.ec2.revoke_security_group_ingress().group_id(&sg.id).set_ip_permissions(Some(perms.clone())).send()
            })
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_code(&["InvalidPermission.NotFound"]) => {}
            Err(e) => return Err(e.into()),
        }
    }
    sg.ingress = desired.ingress.clone();
    Ok(sg.id.clone())
}

/// Creates the group; when AWS answers that it exists (an earlier create whose reply was
/// lost made it), finds it by name and adopts it if it is ours.
async fn create_or_adopt(t: &Target<'_>, desired: &SecurityGroup) -> Result<ActualSecurityGroup, Error> {
    let aws = t.aws;
    let tags: Vec<Tag> = desired.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    let spec = TagSpecification::builder().resource_type(ResourceType::SecurityGroup).set_tags(Some(tags)).build();
    let created = aws
        .call(EC2, "CreateSecurityGroup", || {
            aws.ec2
                .create_security_group()
                .group_name(&desired.name)
                .description(&desired.description)
                .vpc_id(t.vpc_id)
                .tag_specifications(spec.clone())
                .send()
        })
        .await;
    match created {
        Ok(out) => {
            let id = out.group_id.ok_or(crate::aws::Error::Response { operation: "CreateSecurityGroup", what: "no GroupId".into() })?;
            tracing::info!(%id, name = %desired.name, "created security group");
            Ok(ActualSecurityGroup { id, ingress: BTreeSet::new() })
        }
        Err(e) if e.is_code(&["InvalidGroup.Duplicate"]) => match find_by_name(t, &desired.name).await? {
            Some(found) if super::ours(&ec2_tags(found.tags()), &super::owner_tags(&desired.tags)) => {
                let id = found.group_id().unwrap_or_default().to_string();
                tracing::info!(%id, name = %desired.name, "adopted the security group an earlier create made (its reply was lost)");
                Ok(ActualSecurityGroup { id, ingress: found.ip_permissions().iter().flat_map(permissions_from_sdk).collect() })
            }
            Some(found) => {
                let id = found.group_id().unwrap_or_default();
                Err(Error::not_ours("security group", &desired.name, id, &super::owner_tags(&desired.tags)))
            }
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// The VPC's security group named `name`, if any.
pub(crate) async fn find_by_name(t: &Target<'_>, name: &str) -> Result<Option<aws_sdk_ec2::types::SecurityGroup>, Error> {
    let filters = vec![ec2_filter("vpc-id", [t.vpc_id]), ec2_filter("group-name", [name])];
    let out = t
        .aws
        .call(EC2, "DescribeSecurityGroups", || t.aws.ec2.describe_security_groups().set_filters(Some(filters.clone())).send())
        .await?;
    Ok(out.security_groups.unwrap_or_default().into_iter().next())
}

/// EC2 tags as a map.
pub(crate) fn ec2_tags(tags: &[Tag]) -> crate::model::Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

pub async fn delete(t: &Target<'_>, stack: &str, actual: &mut Option<ActualSecurityGroup>) -> Result<(), Error> {
    let Some(sg) = actual.as_ref() else {
        return Ok(());
    };
    let aws = t.aws;
    match aws.call(EC2, "DeleteSecurityGroup", || aws.ec2.delete_security_group().group_id(&sg.id).send()).await {
        Ok(_) => {
            tracing::info!(id = %sg.id, "deleted security group");
            t.inventory.remove_security_group(stack, &sg.id).await;
        }
        Err(e) if e.is_code(&["InvalidGroup.NotFound"]) => {}
        // DependencyViolation while the deleted load balancer's interfaces drain: retried later.
        Err(e) => return Err(e.into()),
    }
    *actual = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(port: i32, cidr: &str) -> Permission {
        Permission { protocol: "tcp".into(), from_port: port, to_port: port, cidr: cidr.into() }
    }

    #[test]
    fn diff_adds_missing_and_removes_extra() {
        let actual = BTreeSet::from([p(80, "0.0.0.0/0"), p(8080, "0.0.0.0/0")]);
        let desired = BTreeSet::from([p(80, "0.0.0.0/0"), p(80, "::/0")]);
        let (add, remove) = diff(&actual, &desired);
        assert_eq!(add, vec![p(80, "::/0")]);
        assert_eq!(remove, vec![p(8080, "0.0.0.0/0")]);
        assert_eq!(diff(&desired, &desired), (vec![], vec![]));
    }
}
