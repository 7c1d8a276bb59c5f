//! The bed behaves like a cluster: the scheduler places a Deployment's pods on the bed's
//! nodes, KWOK (as the kubelet) starts them at addresses their node's interface holds in
//! AWS, the EndpointSlice controller publishes them, readiness gates hold a pod back as a
//! kubelet would, and a deleted pod is terminating until it goes.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use support::{Bed, eventually, pod_ip, pod_ready};

const APP: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  selector: {app: app}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 4
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: app, ports: [{containerPort: 8080}]}]
"#;

/// (address, ready, serving, terminating) of every endpoint in the Service's slices.
async fn endpoints(bed: &Bed, service: &str) -> BTreeSet<(String, bool, bool, bool)> {
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let slices = bed.api::<EndpointSlice>().list(&lp).await.unwrap();
    let mut out = BTreeSet::new();
    for slice in &slices.items {
        let managed = slice.metadata.labels.as_ref().and_then(|l| l.get("endpointslice.kubernetes.io/managed-by"));
        assert_eq!(managed.map(String::as_str), Some("endpointslice-controller.k8s.io"), "made by kube-controller-manager");
        for e in &slice.endpoints {
            let c = e.conditions.clone().unwrap_or_default();
            out.insert((e.addresses[0].clone(), c.ready == Some(true), c.serving == Some(true), c.terminating == Some(true)));
        }
    }
    out
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, bits) = cidr.split_once('/').unwrap();
    let (ip, net): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (ip.parse().unwrap(), net.parse().unwrap());
    let mask = u32::MAX.checked_shl(32 - bits.parse::<u32>().unwrap()).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

#[tokio::test]
async fn a_deployments_pods_run_on_the_beds_nodes_at_addresses_their_interfaces_hold() {
    let bed = Bed::start("bed-pods").await;
    bed.apply(APP).await;
    let ips = bed.wait_ready_pods("app=app", 4).await;

    let nodes = Api::<Node>::all(bed.client.clone());
    let pods = bed.api::<Pod>().list(&ListParams::default().labels("app=app")).await.unwrap();
    for pod in &pods.items {
        let ip = pod_ip(pod).unwrap();
        let node_name = pod.spec.as_ref().unwrap().node_name.clone().expect("scheduled");
        assert!(bed.nodes.contains(&node_name), "{node_name} is one of this bed's nodes {:?}", bed.nodes);
        let node = nodes.get(&node_name).await.unwrap();
        let cidr = node.spec.as_ref().unwrap().pod_cidr.clone().unwrap();
        assert!(in_cidr(&ip, &cidr), "pod IP {ip} is in its node's podCIDR {cidr}");
        // The node's instance: its interface holds the pod's address, as the VPC CNI assigns it.
        let provider = node.spec.as_ref().unwrap().provider_id.clone().unwrap();
        let instance = provider.rsplit('/').next().unwrap();
        let out = bed
            .ec2
            .describe_network_interfaces()
            .filters(aws_sdk_ec2::types::Filter::builder().name("attachment.instance-id").values(instance).build())
            .send()
            .await
            .unwrap();
        let held: BTreeSet<String> = out
            .network_interfaces()
            .iter()
            .flat_map(|n| n.private_ip_addresses())
            .filter_map(|a| a.private_ip_address().map(str::to_string))
            .collect();
        assert!(held.contains(&ip), "{ip} is an address of {instance}'s interface");
        let host_ip = pod.status.as_ref().unwrap().host_ip.clone().unwrap();
        let internal = node.status.unwrap().addresses.unwrap().into_iter().find(|a| a.type_ == "InternalIP").unwrap().address;
        assert_eq!(host_ip, internal, "hostIP is the node's private IP");
    }
    let want: BTreeSet<_> = ips.iter().map(|ip| (ip.clone(), true, true, false)).collect();
    eventually("the EndpointSlice controller publishes the four pods", Duration::from_secs(30), || async {
        (endpoints(&bed, "app").await == want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_pod_is_ready_only_when_every_readiness_gate_is_true() {
    let bed = Bed::start("bed-gates").await;
    bed.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: gated}
spec:
  selector: {app: gated}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: gated, labels: {app: gated}}
spec:
  readinessGates: [{conditionType: example.com/one}, {conditionType: example.com/two}]
  containers: [{name: app, image: app}]
"#,
    )
    .await;
    let pods = bed.api::<Pod>();
    let condition = |pod: &Pod, t: &str| pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == t).map(|c| c.status.clone());
    let pod = eventually("the pod runs", Duration::from_secs(30), || async {
        let p = pods.get("gated").await.ok()?;
        (condition(&p, "ContainersReady").as_deref() == Some("True")).then_some(p)
    })
    .await;
    assert!(!pod_ready(&pod), "not Ready while its gates are missing");
    let ip = pod_ip(&pod).unwrap();
    eventually("its endpoint is published not ready", Duration::from_secs(30), || async {
        (endpoints(&bed, "gated").await == BTreeSet::from([(ip.clone(), false, false, false)])).then_some(())
    })
    .await;

    let set = |t: &'static str, status: &'static str| {
        let pods = pods.clone();
        async move {
            let patch = serde_json::json!({"status": {"conditions": [{"type": t, "status": status}]}});
            pods.patch_status("gated", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
        }
    };
    set("example.com/one", "True").await;
    // One gate of two: the kubelet keeps it unready (KWOK's stages run on every event, so
    // it would turn Ready within milliseconds if it were going to).
    let watch_until = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < watch_until {
        assert!(!pod_ready(&pods.get("gated").await.unwrap()), "one gate of two is not enough");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    set("example.com/two", "True").await;
    eventually("Ready once both gates are True", Duration::from_secs(30), || async {
        pod_ready(&pods.get("gated").await.ok()?).then_some(())
    })
    .await;
    eventually("its endpoint turns ready", Duration::from_secs(30), || async {
        (endpoints(&bed, "gated").await == BTreeSet::from([(ip.clone(), true, true, false)])).then_some(())
    })
    .await;
    set("example.com/one", "False").await;
    eventually("unready again when a gate turns False", Duration::from_secs(30), || async {
        (!pod_ready(&pods.get("gated").await.ok()?)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_deleted_pod_is_terminating_until_it_goes() {
    let bed = Bed::start("bed-delete").await;
    bed.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: drain}
spec:
  selector: {app: drain}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: drain
  labels: {app: drain}
  annotations: {pod-delete.stage.kwok.x-k8s.io/delay: "3s"}
spec:
  terminationGracePeriodSeconds: 10
  containers: [{name: app, image: app}]
"#,
    )
    .await;
    let ip = bed.wait_ready_pods("app=drain", 1).await.pop_first().unwrap();
    let pods = bed.api::<Pod>();
    let deleted = std::time::Instant::now();
    pods.delete("drain", &DeleteParams::default()).await.unwrap();
    eventually("the endpoint is terminating but serving", Duration::from_secs(10), || async {
        (endpoints(&bed, "drain").await == BTreeSet::from([(ip.clone(), false, true, true)])).then_some(())
    })
    .await;
    assert!(pods.get_opt("drain").await.unwrap().is_some(), "still there while it drains");
    eventually("the pod goes after its drain time", Duration::from_secs(15), || async {
        pods.get_opt("drain").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(deleted.elapsed() >= Duration::from_secs(3), "not before its drain time: {:?}", deleted.elapsed());
    eventually("its endpoint is gone", Duration::from_secs(10), || async { endpoints(&bed, "drain").await.is_empty().then_some(()) }).await;
}
