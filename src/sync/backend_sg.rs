//! The cluster's shared backend security group (LBC's `k8s-traffic-<cluster>-<hash>`,
//! tagged `elbv2.k8s.aws/cluster=<cluster>` and `elbv2.k8s.aws/resource=backend-sg`):
//! attached to the load balancers, it is the one group the targets' security groups allow.
//! Found by its tags (LBC's is reused), created when the first load balancer needs it, and
//! deleted once none does. `--backend-security-group` names one to use instead; that one is
//! never created or deleted.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use tokio::sync::Mutex;

use super::{Error, Target, security_group};
use crate::aws::inventory::{BACKEND_SG_TAG, BACKEND_SG_VALUE};
use crate::model::{TAG_CLUSTER, names};

const EC2: &str = "ec2";
const DESCRIPTION: &str = "[k8s] Shared Backend SecurityGroup for LoadBalancer";

pub struct BackendGroup {
    cluster: String,
    /// `--backend-security-group`.
    configured: Option<String>,
    /// The ID once found or created (held while creating, so two groups make one).
    id: Mutex<Option<String>>,
}

impl BackendGroup {
    pub fn new(cluster: String, configured: Option<String>) -> Self {
        BackendGroup { cluster, configured, id: Mutex::new(None) }
    }

    /// Whether this controller creates and deletes the group (it was not given one).
    pub fn managed(&self) -> bool {
        self.configured.is_none()
    }

    /// The group's ID: the configured one, the one tagged for the cluster, or a new one.
    pub async fn ensure(&self, t: &Target<'_>) -> Result<String, Error> {
        if let Some(id) = &self.configured {
            return Ok(id.clone());
        }
        let mut id = self.id.lock().await;
        if let Some(id) = id.as_ref() {
            return Ok(id.clone());
        }
        let found = match t.inventory.backend_security_groups(t.aws).await?.into_iter().min() {
            Some(existing) => existing,
            None => self.create(t).await?,
        };
        *id = Some(found.clone());
        Ok(found)
    }

    /// The group's ID if it exists, without creating it.
    pub async fn current(&self, t: &Target<'_>) -> Result<Option<String>, Error> {
        if let Some(id) = self.id.lock().await.clone() {
            return Ok(Some(id));
        }
        Ok(t.inventory.backend_security_groups(t.aws).await?.into_iter().min())
    }

    async fn create(&self, t: &Target<'_>) -> Result<String, Error> {
        let aws = t.aws;
        let name = names::backend_security_group(&self.cluster);
        let tags = [(TAG_CLUSTER, self.cluster.as_str()), (BACKEND_SG_TAG, BACKEND_SG_VALUE)]
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .to_vec();
        let spec = TagSpecification::builder().resource_type(ResourceType::SecurityGroup).set_tags(Some(tags)).build();
        let created = aws
            .call(EC2, "CreateSecurityGroup", || {
                aws.ec2
                    .create_security_group()
                    .group_name(&name)
                    .description(DESCRIPTION)
                    .vpc_id(t.vpc_id)
                    .tag_specifications(spec.clone())
                    .send()
            })
            .await;
        let id = match created {
            Ok(out) => out.group_id.ok_or(crate::aws::Error::Response { operation: "CreateSecurityGroup", what: "no GroupId".into() })?,
            // A create whose reply was lost may have happened: the group is found by its name,
            // and taken only if it is tagged as the cluster's backend group.
            Err(e) if e.is_code(&["InvalidGroup.Duplicate"]) => {
                let owner = [(TAG_CLUSTER, self.cluster.as_str()), (BACKEND_SG_TAG, BACKEND_SG_VALUE)];
                match security_group::find_by_name(t, &name).await? {
                    Some(found) if super::ours(&security_group::ec2_tags(found.tags()), &owner) => found.group_id.unwrap_or_default(),
                    Some(found) => {
                        return Err(Error::not_ours("backend security group", &name, found.group_id().unwrap_or_default(), &owner));
                    }
                    None => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(%id, %name, "created the backend security group");
        t.inventory.put_backend_security_group(id.clone()).await;
        Ok(id)
    }

    /// Deletes the group (the caller has made sure no load balancer and no rule uses it).
    /// `DependencyViolation` while a deleted load balancer's interfaces drain is returned,
    /// and the deletion retried with the reconcile.
    pub async fn delete(&self, t: &Target<'_>, id: &str) -> Result<(), Error> {
        let aws = t.aws;
        match aws.call(EC2, "DeleteSecurityGroup", || aws.ec2.delete_security_group().group_id(id).send()).await {
            Ok(_) => tracing::info!(%id, "deleted the backend security group: no load balancer uses it"),
            Err(e) if e.is_code(&["InvalidGroup.NotFound"]) => {}
            Err(e) => return Err(e.into()),
        }
        t.inventory.remove_backend_security_group(id).await;
        *self.id.lock().await = None;
        Ok(())
    }
}
