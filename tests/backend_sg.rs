//! The backend security group, as LBC does it, on the real bed: the nodes are the bed's EC2
//! instances (their interfaces hold the pods' addresses, as the VPC CNI places them), the
//! scheduler puts a Deployment's pods on them, and the rules on the nodes' security groups
//! are read back through DescribeSecurityGroupRules and checked against where the pods are.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, IpPermission, ResourceType, Tag, TagSpecification, UserIdGroupPair};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use support::{Bed, eventually};

const LABEL: &str = "elbv2.k8s.aws/targetGroupBinding=shared";

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

/// The cluster security group the bed's nodes were made with (eks-cluster-sg-<cluster>).
async fn cluster_sg(bed: &Bed) -> String {
    let out = bed
        .ec2
        .describe_security_groups()
        .filters(filter("vpc-id", &bed.vpc_id))
        .filters(filter("group-name", &format!("eks-cluster-sg-{}", bed.cluster)))
        .send()
        .await
        .unwrap();
    out.security_groups()[0].group_id().unwrap().to_string()
}

/// Puts node `i`'s instance (its primary interface, which holds its pods' addresses) in
/// exactly `groups`, as a node group of its own would have them.
async fn set_node_groups(bed: &Bed, i: usize, groups: &[&str]) {
    let node = &bed.seed["nodes"][i];
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    bed.ec2
        .modify_instance_attribute()
        .instance_id(node["instance_id"].as_str().unwrap())
        .set_groups(Some(groups.clone()))
        .send()
        .await
        .unwrap();
    // AWS changes the primary interface with the instance; LocalStack needs to be told too.
    bed.ec2
        .modify_network_interface_attribute()
        .network_interface_id(node["eni_id"].as_str().unwrap())
        .set_groups(Some(groups))
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

/// The Service `web` in front of a Deployment of `replicas` pods listening on `port`, and
/// the Ingress `shop` to it.
fn web(replicas: usize, port: i32) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers: [{{name: web, image: web, ports: [{{containerPort: {port}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: shop}}
spec:
  ingressClassName: alb
  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}
"#
    )
}

/// The nodes (indices into `bed.seed["nodes"]`) that the Ready pods of `web` run on, once
/// exactly `replicas` of them are Ready and none is terminating.
async fn web_placement(bed: &Bed, replicas: usize) -> BTreeSet<usize> {
    let index: BTreeMap<String, usize> = (0..bed.nodes.len()).map(|i| (bed.seed["nodes"][i]["name"].as_str().unwrap().into(), i)).collect();
    eventually(&format!("{replicas} Ready pods of web and no others"), Duration::from_secs(60), || async {
        let pods = bed.api::<Pod>().list(&ListParams::default().labels("app=web")).await.unwrap().items;
        let ready: Vec<&Pod> = pods.iter().filter(|p| support::pod_ready(p) && p.metadata.deletion_timestamp.is_none()).collect();
        if pods.len() != replicas || ready.len() != replicas {
            return None;
        }
        ready.iter().map(|p| index.get(p.spec.as_ref()?.node_name.as_ref()?).copied()).collect::<Option<BTreeSet<usize>>>()
    })
    .await
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
async fn the_nodes_security_groups_let_the_backend_group_in_where_the_pods_run() {
    let bed = Bed::start("backendsg").await;
    // Two node groups: node 0 keeps the cluster group and also has an untagged one (the
    // controller has to pick by tag); node 1 has a group of its own (its only one).
    let group_a = cluster_sg(&bed).await;
    let remote = security_group(&bed, "remote-access", &[("Name", "remote-access")]).await;
    set_node_groups(&bed, 0, &[&group_a, &remote]).await;
    let group_b = security_group(&bed, "nodes-b", &[(&format!("kubernetes.io/cluster/{}", bed.cluster), "owned")]).await;
    set_node_groups(&bed, 1, &[&group_b]).await;
    let node_groups = [group_a.clone(), group_b.clone()];
    let node_names: Vec<String> = (0..2).map(|i| bed.seed["nodes"][i]["name"].as_str().unwrap().to_string()).collect();

    bed.apply(&web(2, 8080)).await;
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

    // The group of every node a pod runs on is opened on the pods' port, and only those.
    let wait_placed_rules = |placed: BTreeSet<usize>, port: i32| {
        let (bed, backend, node_groups) = (&bed, &backend.0, &node_groups);
        async move {
            for (i, sg) in node_groups.iter().enumerate() {
                let want = if placed.contains(&i) { [rule(backend, port, port)].into() } else { BTreeSet::new() };
                wait_rules(bed, sg, want).await;
            }
        }
    };
    let placed = web_placement(&bed, 2).await;
    wait_placed_rules(placed.clone(), 8080).await;
    assert!(group_rules(&bed, &remote).await.is_empty(), "the untagged group is left alone");

    // The pods move (their node selector changes, the Deployment rolls them): the group of
    // the node they leave is closed, the one of the node they land on opened.
    let to = if placed.len() == 2 { 0 } else { 1 - placed.first().unwrap() };
    let pin = serde_json::json!({"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": node_names[to]}}}}});
    bed.api::<Deployment>().patch("web", &PatchParams::default(), &Patch::Merge(pin)).await.unwrap();
    // Right after the template change the old pods alone look settled: wait for the rollout.
    bed.wait_rollout("web").await;
    let moved = web_placement(&bed, 2).await;
    assert_eq!(moved, BTreeSet::from([to]), "the scheduler put both pods on node {to}");
    wait_placed_rules(moved.clone(), 8080).await;

    // A port change: the EndpointSlice controller follows the Service, the rule follows the
    // slice (the new one first, then the old one goes).
    let svc = serde_json::json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9090}]}});
    bed.api::<Service>().patch("web", &PatchParams::default(), &Patch::Merge(svc)).await.unwrap();
    wait_placed_rules(moved.clone(), 9090).await;

    // Instance targets: the nodes' primary interfaces, on the NodePort. One rule per
    // endpoint group and source, from the lowest to the highest port (as LBC aggregates).
    bed.apply(&format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: batch}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 9090}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: batch
  annotations:
    alb.ingress.kubernetes.io/target-type: instance
    alb.ingress.kubernetes.io/healthcheck-port: '8443'
    alb.ingress.kubernetes.io/target-node-labels: alb-bed/pool={}
spec:
  ingressClassName: alb
  defaultBackend: {{service: {{name: batch, port: {{number: 80}}}}}}
"#,
        bed.ns
    ))
    .await;
    bed.wait_hostname("batch").await;
    let node_port = bed.api::<Service>().get("batch").await.unwrap().spec.unwrap().ports.unwrap()[0].node_port.unwrap();
    assert_eq!(backend_groups(&bed).await.len(), 1, "one backend group for the whole cluster");
    // Both nodes are instance targets (the node with the pods needs 9090 too, inside the range).
    for sg in &node_groups {
        wait_rules(&bed, sg, [rule(&backend.0, 8443, node_port)].into()).await;
    }

    // The instance Ingress goes: its ports go with it; the ip Ingress keeps its rule.
    bed.api::<Ingress>().delete("batch", &DeleteParams::default()).await.unwrap();
    wait_placed_rules(moved.clone(), 9090).await;

    // The last Ingress goes: its rule is revoked and the backend group deleted.
    bed.api::<Ingress>().delete("shop", &DeleteParams::default()).await.unwrap();
    wait_placed_rules(BTreeSet::new(), 9090).await;
    eventually("the backend group is deleted after the last load balancer", Duration::from_secs(60), || async {
        backend_groups(&bed).await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_lbc_backend_group_and_its_node_rule_are_adopted_as_they_are() {
    let bed = Bed::start("lbcbackend").await;
    let node_sg = cluster_sg(&bed).await;
    // What LBC left: its backend group (named as LBC names it) and its rule on the nodes' group.
    let name = format!("k8s-traffic-{}-0123456789", bed.cluster);
    let lbc = security_group(&bed, &name, &[("elbv2.k8s.aws/cluster", &bed.cluster), ("elbv2.k8s.aws/resource", "backend-sg")]).await;
    let pair = UserIdGroupPair::builder().group_id(&lbc).description(LABEL).build();
    let perm = IpPermission::builder().ip_protocol("tcp").from_port(8080).to_port(8080).user_id_group_pairs(pair).build();
    bed.ec2.authorize_security_group_ingress().group_id(&node_sg).ip_permissions(perm).send().await.unwrap();

    bed.apply(&web(1, 8080)).await;
    let dns = bed.wait_hostname("shop").await;
    bed.wait_ready_pods("app=web", 1).await;
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
    assert_eq!(group_rules(&bed, &node_sg).await, [rule(&lbc, 8080, 8080)].into());

    // Ours now: it goes with the last Ingress.
    bed.api::<Ingress>().delete("shop", &DeleteParams::default()).await.unwrap();
    wait_rules(&bed, &node_sg, BTreeSet::new()).await;
    eventually("LBC's backend group is deleted with the last load balancer", Duration::from_secs(60), || async {
        backend_groups(&bed).await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn without_the_backend_group_the_nodes_allow_the_managed_group_and_restricted_rules_can_be_off() {
    let bed = Bed::start_with_args("nobackend", &["--enable-backend-security-group=false", "--disable-restricted-sg-rules"]).await;
    let node_sg = cluster_sg(&bed).await;
    bed.apply(&web(1, 8080)).await;
    let dns = bed.wait_hostname("shop").await;
    let managed = bed.stack_security_groups(&format!("{}/shop", bed.ns)).await;
    assert_eq!(managed.len(), 1);
    assert_eq!(bed.load_balancer_by_dns(&dns).await.security_groups(), managed.as_slice(), "the managed group only");
    wait_rules(&bed, &node_sg, [rule(&managed[0], 0, 65535)].into()).await;
    assert!(backend_groups(&bed).await.is_empty(), "no backend group is made");

    // Deleting the Ingress revokes the rule first: AWS refuses to delete a group another names.
    bed.api::<Ingress>().delete("shop", &DeleteParams::default()).await.unwrap();
    wait_rules(&bed, &node_sg, BTreeSet::new()).await;
    eventually("the managed group is deleted", Duration::from_secs(60), || async {
        bed.stack_security_groups(&format!("{}/shop", bed.ns)).await.is_empty().then_some(())
    })
    .await;
}
