//! The backend security group, as LBC does it, on the real bed: nodes are EC2 instances
//! whose security group is tagged for the cluster, pod IPs are secondary addresses of their
//! network interfaces (as the VPC CNI places them), and the rules are read back through
//! DescribeSecurityGroupRules.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, IpPermission, ResourceType, Tag, TagSpecification, UserIdGroupPair};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams};
use support::{Bed, eventually};

const LABEL: &str = "elbv2.k8s.aws/targetGroupBinding=shared";

/// A node: an EC2 instance in the first private subnet with the node security group (tagged
/// for the cluster) and another untagged one, so the controller has to pick by tag.
struct Ec2Node {
    instance: String,
    eni: String,
}

struct Cluster {
    node_sg: String,
    nodes: Vec<Ec2Node>,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

async fn security_group(bed: &Bed, name: &str, tags: &[(&str, &str)]) -> String {
    let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
    let spec = TagSpecification::builder().resource_type(ResourceType::SecurityGroup).set_tags(Some(tags)).build();
    let out = bed
        .ec2
        .create_security_group()
        .group_name(name)
        .description("test")
        .vpc_id(&bed.vpc_id)
        .tag_specifications(spec)
        .send()
        .await
        .unwrap();
    out.group_id().unwrap().to_string()
}

async fn cluster(bed: &Bed, nodes: usize) -> Cluster {
    let node_sg = security_group(bed, "eks-nodes", &[(&format!("kubernetes.io/cluster/{}", bed.cluster), "owned")]).await;
    let other = security_group(bed, "remote-access", &[("Name", "remote-access")]).await;
    let image = bed.ec2.describe_images().send().await.unwrap().images().first().and_then(|i| i.image_id().map(str::to_string));
    let run = bed
        .ec2
        .run_instances()
        .image_id(image.unwrap_or_else(|| "ami-12c6146b".into()))
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Medium)
        .subnet_id(bed.seed["private_subnets"][0].as_str().unwrap())
        .security_group_ids(&node_sg)
        .security_group_ids(&other)
        .min_count(nodes as i32)
        .max_count(nodes as i32)
        .send()
        .await
        .unwrap();
    let nodes = run
        .instances()
        .iter()
        .map(|i| Ec2Node {
            instance: i.instance_id().unwrap().to_string(),
            eni: i.network_interfaces()[0].network_interface_id().unwrap().to_string(),
        })
        .collect();
    Cluster { node_sg, nodes }
}

/// Pod IPs on a node's interface, as the VPC CNI assigns them.
async fn place_pods(bed: &Bed, node: &Ec2Node, ips: &[&str]) {
    bed.ec2
        .assign_private_ip_addresses()
        .network_interface_id(&node.eni)
        .set_private_ip_addresses(Some(ips.iter().map(|s| s.to_string()).collect()))
        .send()
        .await
        .unwrap();
}

/// Inbound rules of `sg` that name another group: (source, from, to, description).
async fn group_rules(bed: &Bed, sg: &str) -> BTreeSet<(String, i32, i32, String)> {
    let out = bed.ec2.describe_security_group_rules().filters(filter("group-id", sg)).send().await.unwrap();
    out.security_group_rules()
        .iter()
        .filter(|r| r.is_egress() == Some(false))
        .filter_map(|r| {
            let source = r.referenced_group_info()?.group_id()?.to_string();
            Some((source, r.from_port()?, r.to_port()?, r.description().unwrap_or_default().to_string()))
        })
        .collect()
}

/// The cluster's backend security groups, found as LBC finds them (by tag).
async fn backend_groups(bed: &Bed) -> Vec<(String, String)> {
    let out = bed
        .ec2
        .describe_security_groups()
        .filters(filter("vpc-id", &bed.vpc_id))
        .filters(filter("tag:elbv2.k8s.aws/cluster", &bed.cluster))
        .filters(filter("tag:elbv2.k8s.aws/resource", "backend-sg"))
        .send()
        .await
        .unwrap();
    out.security_groups().iter().map(|g| (g.group_id().unwrap().to_string(), g.group_name().unwrap().to_string())).collect()
}

fn web(port: i32, ips: &[&str]) -> String {
    let endpoints: Vec<String> = ips.iter().map(|ip| format!("- addresses: [{ip}]")).collect();
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-1, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints:
{}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: shop}}
spec:
  ingressClassName: alb
  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}
"#,
        endpoints.join("\n")
    )
}

async fn wait_rules(bed: &Bed, sg: &str, want: BTreeSet<(String, i32, i32, String)>) {
    eventually(&format!("the rules of {sg} become {want:?} (log: {})", bed.log.display()), Duration::from_secs(60), || async {
        (group_rules(bed, sg).await == want).then_some(())
    })
    .await;
}

fn rule(source: &str, from: i32, to: i32) -> (String, i32, i32, String) {
    (source.to_string(), from, to, LABEL.to_string())
}

#[tokio::test]
async fn the_nodes_security_group_lets_the_backend_group_in_for_ip_and_instance_targets() {
    let bed = Bed::start("backendsg").await;
    let c = cluster(&bed, 2).await;
    place_pods(&bed, &c.nodes[0], &["10.0.128.50", "10.0.128.51"]).await;
    bed.apply(&web(8080, &["10.0.128.50", "10.0.128.51"])).await;
    let dns = bed.wait_hostname("shop").await;

    // One backend group, named as LBC names it, on the load balancer beside the managed one.
    let backend = eventually("the backend group exists", Duration::from_secs(30), || async { backend_groups(&bed).await.pop() }).await;
    assert_eq!(backend_groups(&bed).await.len(), 1);
    assert!(backend.1.starts_with(&format!("k8s-traffic-{}-", bed.cluster)), "{}", backend.1);
    let lb = bed.load_balancer_by_dns(&dns).await;
    let managed = bed.stack_security_groups(&format!("{}/shop", bed.ns)).await;
    let mut want_sgs: Vec<String> = managed.iter().cloned().chain([backend.0.clone()]).collect();
    want_sgs.sort();
    let mut sgs = lb.security_groups().to_vec();
    sgs.sort();
    assert_eq!(sgs, want_sgs, "managed + backend group on the load balancer");

    // The pods' interface carries the tagged node group and another: the tagged one is opened.
    wait_rules(&bed, &c.node_sg, [rule(&backend.0, 8080, 8080)].into()).await;

    // A port change: the rule follows (the new one first, then the old one goes).
    let svc = serde_json::json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9090}]}});
    bed.api::<Service>().patch("web", &PatchParams::default(), &Patch::Merge(svc)).await.unwrap();
    let slice = serde_json::json!({"ports": [{"name": "http", "port": 9090}]});
    bed.api::<EndpointSlice>().patch("web-1", &PatchParams::default(), &Patch::Merge(slice)).await.unwrap();
    wait_rules(&bed, &c.node_sg, [rule(&backend.0, 9090, 9090)].into()).await;

    // Instance targets: the nodes' primary interfaces, on the NodePort. One rule per
    // endpoint group and source, from the lowest to the highest port (as LBC aggregates).
    let nodes: kube::Api<Node> = kube::Api::all(bed.client.clone());
    let node_names: Vec<String> = c.nodes.iter().map(|n| format!("{}-{}", bed.ns, n.instance)).collect();
    for (name, n) in node_names.iter().zip(&c.nodes) {
        let node = serde_json::json!({"metadata": {"name": name}, "spec": {"providerID": format!("aws:///us-east-1a/{}", n.instance)}});
        nodes.create(&Default::default(), &serde_json::from_value(node).unwrap()).await.unwrap();
    }
    bed.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: batch}
spec:
  type: NodePort
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: batch
  annotations: {alb.ingress.kubernetes.io/target-type: instance, alb.ingress.kubernetes.io/healthcheck-port: '8443'}
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: batch, port: {number: 80}}}
"#,
    )
    .await;
    bed.wait_hostname("batch").await;
    let node_port = bed.api::<Service>().get("batch").await.unwrap().spec.unwrap().ports.unwrap()[0].node_port.unwrap();
    assert_eq!(backend_groups(&bed).await.len(), 1, "one backend group for the whole cluster");
    wait_rules(&bed, &c.node_sg, [rule(&backend.0, 8443, node_port)].into()).await;

    // The instance Ingress goes: its ports go with it; the ip Ingress keeps its rule.
    bed.api::<Ingress>().delete("batch", &DeleteParams::default()).await.unwrap();
    wait_rules(&bed, &c.node_sg, [rule(&backend.0, 9090, 9090)].into()).await;

    // The last Ingress goes: its rule is revoked and the backend group deleted.
    bed.api::<Ingress>().delete("shop", &DeleteParams::default()).await.unwrap();
    wait_rules(&bed, &c.node_sg, BTreeSet::new()).await;
    eventually("the backend group is deleted after the last load balancer", Duration::from_secs(60), || async {
        backend_groups(&bed).await.is_empty().then_some(())
    })
    .await;
    eventually("the Ingresses are gone", Duration::from_secs(30), || async {
        bed.api::<Ingress>().list(&Default::default()).await.unwrap().items.is_empty().then_some(())
    })
    .await;
    for n in &node_names {
        let _ = nodes.delete(n, &Default::default()).await;
    }
}

#[tokio::test]
async fn an_lbc_backend_group_and_its_node_rule_are_adopted_as_they_are() {
    let bed = Bed::start("lbcbackend").await;
    let c = cluster(&bed, 1).await;
    place_pods(&bed, &c.nodes[0], &["10.0.128.60"]).await;
    // What LBC left: its backend group (named as LBC names it) and its rule on the nodes' group.
    let name = format!("k8s-traffic-{}-0123456789", bed.cluster);
    let lbc = security_group(&bed, &name, &[("elbv2.k8s.aws/cluster", &bed.cluster), ("elbv2.k8s.aws/resource", "backend-sg")]).await;
    let pair = UserIdGroupPair::builder().group_id(&lbc).description(LABEL).build();
    let perm = IpPermission::builder().ip_protocol("tcp").from_port(8080).to_port(8080).user_id_group_pairs(pair).build();
    bed.ec2.authorize_security_group_ingress().group_id(&c.node_sg).ip_permissions(perm).send().await.unwrap();

    bed.apply(&web(8080, &["10.0.128.60"])).await;
    let dns = bed.wait_hostname("shop").await;
    assert!(bed.load_balancer_by_dns(&dns).await.security_groups().contains(&lbc), "LBC's backend group is attached");
    assert_eq!(backend_groups(&bed).await, [(lbc.clone(), name)], "reused, not duplicated");
    bed.wait_quiet().await;
    let calls = bed.aws_calls().await;
    assert_eq!(calls.get("CreateSecurityGroup"), Some(&1), "only the managed group is created: {calls:?}");
    assert_eq!(
        calls.get("AuthorizeSecurityGroupIngress"),
        Some(&1),
        "the managed group's listener rule only, LBC's node rule is kept: {calls:?}"
    );
    assert_eq!(group_rules(&bed, &c.node_sg).await, [rule(&lbc, 8080, 8080)].into());

    // Ours now: it goes with the last Ingress.
    bed.api::<Ingress>().delete("shop", &DeleteParams::default()).await.unwrap();
    wait_rules(&bed, &c.node_sg, BTreeSet::new()).await;
    eventually("LBC's backend group is deleted with the last load balancer", Duration::from_secs(60), || async {
        backend_groups(&bed).await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn without_the_backend_group_the_nodes_allow_the_managed_group_and_restricted_rules_can_be_off() {
    let bed = Bed::start_with_args("nobackend", &["--enable-backend-security-group=false", "--disable-restricted-sg-rules"]).await;
    let c = cluster(&bed, 1).await;
    place_pods(&bed, &c.nodes[0], &["10.0.128.70"]).await;
    bed.apply(&web(8080, &["10.0.128.70"])).await;
    let dns = bed.wait_hostname("shop").await;
    let managed = bed.stack_security_groups(&format!("{}/shop", bed.ns)).await;
    assert_eq!(managed.len(), 1);
    assert_eq!(bed.load_balancer_by_dns(&dns).await.security_groups(), managed.as_slice(), "the managed group only");
    wait_rules(&bed, &c.node_sg, [rule(&managed[0], 0, 65535)].into()).await;
    assert!(backend_groups(&bed).await.is_empty(), "no backend group is made");

    // Deleting the Ingress revokes the rule first: AWS refuses to delete a group another names.
    bed.api::<Ingress>().delete("shop", &DeleteParams::default()).await.unwrap();
    wait_rules(&bed, &c.node_sg, BTreeSet::new()).await;
    eventually("the managed group is deleted", Duration::from_secs(60), || async {
        bed.stack_security_groups(&format!("{}/shop", bed.ns)).await.is_empty().then_some(())
    })
    .await;
}
