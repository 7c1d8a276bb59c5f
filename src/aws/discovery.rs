//! Shared AWS lookups cached with a TTL: one call serves every group's reconcile.

use std::time::{Duration, Instant};

use aws_sdk_acm::types::{CertificateStatus, Filters, KeyAlgorithm};
use aws_sdk_ec2::types::Filter;
use tokio::sync::Mutex;

use super::{Aws, Error, paginate};
use crate::model::{Certificate, SecurityGroupInfo, Subnet};

/// A list read from AWS, with when it was read.
type Cached<T> = Mutex<Option<(Instant, Vec<T>)>>;

/// The cached list, if younger than `ttl`.
fn fresh<T: Clone>(cached: &Option<(Instant, Vec<T>)>, ttl: Duration) -> Option<Vec<T>> {
    cached.as_ref().filter(|(at, _)| at.elapsed() < ttl).map(|(_, v)| v.clone())
}

pub struct Discovery {
    vpc_id: String,
    ttl: Duration,
    subnets: Cached<Subnet>,
    certificates: Cached<Certificate>,
    security_groups: Cached<SecurityGroupInfo>,
}

impl Discovery {
    pub fn new(vpc_id: String, ttl: Duration) -> Self {
        Discovery { vpc_id, ttl, subnets: Mutex::new(None), certificates: Mutex::new(None), security_groups: Mutex::new(None) }
    }

    /// Every subnet of the VPC with its tags; the model picks by role and cluster tags.
    pub async fn subnets(&self, aws: &Aws) -> Result<Vec<Subnet>, Error> {
        let mut cached = self.subnets.lock().await;
        if let Some(fresh) = fresh(&cached, self.ttl) {
            return Ok(fresh);
        }
        let filter = Filter::builder().name("vpc-id").values(&self.vpc_id).build();
        let filter = &filter;
        let sdk_subnets = paginate(|token| async move {
            let out = aws
                .call("ec2", "DescribeSubnets", || aws.ec2.describe_subnets().filters(filter.clone()).set_next_token(token.clone()).send())
                .await?;
            Ok((out.subnets.unwrap_or_default(), out.next_token))
        })
        .await?;
        let subnets: Vec<Subnet> = sdk_subnets
            .into_iter()
            .map(|s| Subnet {
                id: s.subnet_id().unwrap_or_default().to_string(),
                availability_zone: s.availability_zone().unwrap_or_default().to_string(),
                tags: s.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect(),
            })
            .collect();
        *cached = Some((Instant::now(), subnets.clone()));
        Ok(subnets)
    }

    /// Every ISSUED ACM certificate with the names it covers. Every key type is asked
    /// for: ListCertificates returns only RSA-2048 ones unless told otherwise, which is
    /// how ECDSA certificates went unseen in LBC.
    pub async fn certificates(&self, aws: &Aws) -> Result<Vec<Certificate>, Error> {
        let mut cached = self.certificates.lock().await;
        if let Some(fresh) = fresh(&cached, self.ttl) {
            return Ok(fresh);
        }
        let filters =
            Filters::builder().set_key_types(Some(KeyAlgorithm::values().iter().map(|k| KeyAlgorithm::from(*k)).collect())).build();
        let filters = &filters;
        let summaries = paginate(|token| async move {
            let out = aws
                .call("acm", "ListCertificates", || {
                    aws.acm
                        .list_certificates()
                        .certificate_statuses(CertificateStatus::Issued)
                        .includes(filters.clone())
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
            Ok((out.certificate_summary_list.unwrap_or_default(), out.next_token))
        })
        .await?;
        let certs: Vec<Certificate> = summaries
            .into_iter()
            .filter_map(|s| {
                let mut domains: Vec<String> = s.domain_name().into_iter().map(str::to_string).collect();
                for san in s.subject_alternative_name_summaries() {
                    if !domains.contains(san) {
                        domains.push(san.clone());
                    }
                }
                Some(Certificate { arn: s.certificate_arn?, domains })
            })
            .collect();
        *cached = Some((Instant::now(), certs.clone()));
        Ok(certs)
    }

    /// The VPC's security groups, to resolve `security-groups` names.
    pub async fn security_groups(&self, aws: &Aws) -> Result<Vec<SecurityGroupInfo>, Error> {
        let mut cached = self.security_groups.lock().await;
        if let Some(fresh) = fresh(&cached, self.ttl) {
            return Ok(fresh);
        }
        let filter = Filter::builder().name("vpc-id").values(&self.vpc_id).build();
        let filter = &filter;
        let sdk = paginate(|token| async move {
            let out = aws
                .call("ec2", "DescribeSecurityGroups", || {
                    aws.ec2.describe_security_groups().filters(filter.clone()).set_next_token(token.clone()).send()
                })
                .await?;
            Ok((out.security_groups.unwrap_or_default(), out.next_token))
        })
        .await?;
        let groups: Vec<SecurityGroupInfo> = sdk
            .into_iter()
            .map(|g| SecurityGroupInfo {
                name_tag: g.tags().iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value().map(str::to_string)),
                id: g.group_id.unwrap_or_default(),
                name: g.group_name.unwrap_or_default(),
            })
            .collect();
        *cached = Some((Instant::now(), groups.clone()));
        Ok(groups)
    }
}
