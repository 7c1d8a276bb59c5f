//! The network interfaces targets live on, with their security groups: the interface
//! holding a pod IP (VPC CNI puts pod IPs on the nodes' interfaces as secondary
//! addresses) and an instance's primary interface. Interfaces and their groups change
//! rarely, so lookups are batched, and every address of a described interface is cached
//! (a pod IP from the node's warm pool is then known without a call). Not found is cached
//! too, for the same time, so a target outside the VPC's interfaces costs one call per TTL.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::NetworkInterface;
use tokio::sync::Mutex;

use super::{Aws, Error, ec2_filter, paginate};

const EC2: &str = "ec2";
/// Values per filter (AWS allows 200; one more filter holds the VPC, as LBC counts it).
const VALUES_PER_CALL: usize = 199;

/// A network interface and the security groups on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eni {
    pub id: String,
    pub security_groups: Vec<String>,
}

type Cached = (Instant, Option<Arc<Eni>>);

pub struct Enis {
    vpc_id: String,
    ttl: Duration,
    by_ip: Mutex<HashMap<String, Cached>>,
    by_instance: Mutex<HashMap<String, Cached>>,
}

fn eni_of(n: &NetworkInterface) -> Option<Eni> {
    let id = n.network_interface_id()?.to_string();
    Some(Eni { id, security_groups: n.groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect() })
}

impl Enis {
    pub fn new(vpc_id: String, ttl: Duration) -> Self {
        Enis { vpc_id, ttl, by_ip: Mutex::default(), by_instance: Mutex::default() }
    }

    /// The interface holding each private IP (`None`: no interface of the VPC has it).
    pub async fn of_ips(&self, aws: &Aws, ips: &BTreeSet<String>) -> Result<BTreeMap<String, Option<Arc<Eni>>>, Error> {
        // Held across the call: two groups asking for the same new pods make one call.
        let mut cache = self.by_ip.lock().await;
        let missing: Vec<String> = ips.iter().filter(|ip| cache.get(*ip).is_none_or(|(at, _)| at.elapsed() >= self.ttl)).cloned().collect();
        let vpc = [self.vpc_id.clone()];
        for chunk in missing.chunks(VALUES_PER_CALL) {
            let filters = vec![ec2_filter("vpc-id", vpc.clone()), ec2_filter("addresses.private-ip-address", chunk.to_vec())];
            let filters = &filters;
            let found = paginate(|token| async move {
                let out = aws
                    .call(EC2, "DescribeNetworkInterfaces", || {
                        aws.ec2.describe_network_interfaces().set_filters(Some(filters.clone())).set_next_token(token.clone()).send()
                    })
                    .await?;
                Ok((out.network_interfaces.unwrap_or_default(), out.next_token))
            })
            .await?;
            let now = Instant::now();
            for ip in chunk {
                cache.insert(ip.clone(), (now, None));
            }
            for n in &found {
                let Some(eni) = eni_of(n).map(Arc::new) else { continue };
                let addresses = n.private_ip_addresses().iter().filter_map(|a| a.private_ip_address()).chain(n.private_ip_address());
                for ip in addresses {
                    cache.insert(ip.to_string(), (now, Some(eni.clone())));
                }
            }
        }
        Ok(ips.iter().map(|ip| (ip.clone(), cache.get(ip).and_then(|(_, e)| e.clone()))).collect())
    }

    /// Each instance's primary interface (device index 0), `None` for an unknown instance.
    pub async fn of_instances(&self, aws: &Aws, ids: &BTreeSet<String>) -> Result<BTreeMap<String, Option<Arc<Eni>>>, Error> {
        let mut cache = self.by_instance.lock().await;
        let missing: Vec<String> = ids.iter().filter(|id| cache.get(*id).is_none_or(|(at, _)| at.elapsed() >= self.ttl)).cloned().collect();
        for chunk in missing.chunks(VALUES_PER_CALL) {
            // A filter, not InstanceIds: an unknown ID must not fail the whole call.
            let filters = vec![ec2_filter("instance-id", chunk.to_vec())];
            let filters = &filters;
            let reservations = paginate(|token| async move {
                let out = aws
                    .call(EC2, "DescribeInstances", || {
                        aws.ec2.describe_instances().set_filters(Some(filters.clone())).set_next_token(token.clone()).send()
                    })
                    .await?;
                Ok((out.reservations.unwrap_or_default(), out.next_token))
            })
            .await?;
            let now = Instant::now();
            for id in chunk {
                cache.insert(id.clone(), (now, None));
            }
            for instance in reservations.iter().flat_map(|r| r.instances()) {
                let Some(id) = instance.instance_id() else { continue };
                let primary =
                    instance.network_interfaces().iter().find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0)).and_then(|n| {
                        let eni_id = n.network_interface_id()?.to_string();
                        Some(Eni {
                            id: eni_id,
                            security_groups: n.groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
                        })
                    });
                cache.insert(id.to_string(), (now, primary.map(Arc::new)));
            }
        }
        Ok(ids.iter().map(|id| (id.clone(), cache.get(id).and_then(|(_, e)| e.clone()))).collect())
    }
}
