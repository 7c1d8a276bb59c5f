//! Shared AWS lookups cached with a TTL: one call serves every group's reconcile.

use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use tokio::sync::Mutex;

use super::{Aws, Error, paginate};
use crate::model::Subnet;

pub struct Discovery {
    vpc_id: String,
    ttl: Duration,
    subnets: Mutex<Option<(Instant, Vec<Subnet>)>>,
}

impl Discovery {
    pub fn new(vpc_id: String, ttl: Duration) -> Self {
        Discovery {
            vpc_id,
            ttl,
            subnets: Mutex::new(None),
        }
    }

    /// Every subnet of the VPC with its tags; the model picks by role and cluster tags.
    pub async fn subnets(&self, aws: &Aws) -> Result<Vec<Subnet>, Error> {
        let mut cached = self.subnets.lock().await;
        if let Some((at, subnets)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(subnets.clone());
        }
        let filter = Filter::builder()
            .name("vpc-id")
            .values(&self.vpc_id)
            .build();
        let filter = &filter;
        let sdk_subnets = paginate(|token| async move {
            let out = aws
                .call("ec2", "DescribeSubnets", || {
                    aws.ec2
                        .describe_subnets()
                        .filters(filter.clone())
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            Ok((out.subnets.unwrap_or_default(), out.next_token))
        })
        .await?;
        let subnets: Vec<Subnet> = sdk_subnets
            .into_iter()
            .map(|s| Subnet {
                id: s.subnet_id().unwrap_or_default().to_string(),
                availability_zone: s.availability_zone().unwrap_or_default().to_string(),
                tags: s
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_string(),
                            t.value().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect(),
            })
            .collect();
        *cached = Some((Instant::now(), subnets.clone()));
        Ok(subnets)
    }
}
