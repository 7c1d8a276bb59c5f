//! Integration tests on the real bed: a kube-apiserver with its controller-manager,
//! scheduler and KWOK as the kubelet, and LocalStack; the controller as its own process.
//! Pods come from Deployments and their endpoints from the EndpointSlice controller; every
//! outcome is read back through the Kubernetes and AWS APIs.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use support::{Bed, eventually, is_mutating};

/// The Service `web` selecting the pods `app=web`.
const WEB_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

/// Two pods behind `web`.
const WEB_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
"#;

const SHOP: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /health, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
"#;

/// The Service, its Deployment of two pods and the Ingress `shop`.
async fn apply_app(bed: &Bed) {
    bed.apply(WEB_SERVICE).await;
    bed.apply(WEB_DEPLOYMENT).await;
    bed.apply(SHOP).await;
}

/// A Deployment `web-{part}` of pods `app=web` (so behind the Service `web`), all on `node`.
fn pinned_deployment(part: &str, node: &str, replicas: i32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-{part}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web, part: {part}}}}}
  template:
    metadata: {{labels: {{app: web, part: {part}}}}}
    spec:
      nodeSelector: {{kubernetes.io/hostname: {node}}}
      terminationGracePeriodSeconds: 5
      containers: [{{name: web, image: web, ports: [{{containerPort: 8080}}]}}]
"#
    )
}

fn path_values(rule: &aws_sdk_elasticloadbalancingv2::types::Rule) -> Vec<String> {
    rule.conditions()
        .iter()
        .filter(|c| c.field() == Some("path-pattern"))
        .flat_map(|c| match c.path_pattern_config() {
            Some(p) if !p.values().is_empty() => p.values().to_vec(),
            _ => c.values().to_vec(),
        })
        .collect()
}

fn forward_arn(rule: &aws_sdk_elasticloadbalancingv2::types::Rule) -> Option<String> {
    let a = rule.actions().first()?;
    a.target_group_arn().map(str::to_string).or_else(|| a.forward_config()?.target_groups().first()?.target_group_arn().map(str::to_string))
}

/// The targets that pods at these IPs make on the container port 8080.
fn targets_of(ips: &BTreeSet<String>) -> BTreeSet<(String, i32)> {
    ips.iter().map(|ip| (ip.clone(), 8080)).collect()
}

/// Waits until the target group's targets are exactly `want`.
async fn wait_targets(bed: &Bed, tg: &str, want: &BTreeSet<(String, i32)>) {
    eventually(&format!("targets become {want:?} (log: {})", bed.log.display()), Duration::from_secs(30), || async {
        (bed.targets(tg).await == *want).then_some(())
    })
    .await;
}

/// Everything the converged `shop` Ingress has in AWS, by ARN.
struct Provisioned {
    lb: String,
    listener: String,
    rules: Vec<String>,
    tg: String,
}

async fn provisioned(bed: &Bed) -> Provisioned {
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let lb_arn = lb.load_balancer_arn().unwrap().to_string();
    let listener = bed.listeners(&lb_arn).await.remove(0);
    let listener_arn = listener.listener_arn().unwrap().to_string();
    let rules = bed.rules(&listener_arn).await;
    let tg = forward_arn(&rules[0]).expect("rule forwards to a target group");
    Provisioned { lb: lb_arn, listener: listener_arn, rules: rules.iter().map(|r| r.rule_arn().unwrap().to_string()).collect(), tg }
}

#[tokio::test]
async fn ingress_becomes_an_alb_with_listener_rules_and_targets() {
    let bed = Bed::start("create").await;
    apply_app(&bed).await;
    let dns = bed.wait_hostname("shop").await;

    let lb = bed.load_balancer_by_dns(&dns).await;
    let lb_arn = lb.load_balancer_arn().unwrap();
    assert_eq!(lb.scheme().unwrap().as_str(), "internal");
    let ns: String = bed.ns.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    assert!(lb.load_balancer_name().unwrap().starts_with(&format!("k8s-{ns}-shop-")), "{:?}", lb.load_balancer_name());
    assert_eq!(lb.availability_zones().len(), 3, "one private subnet per AZ");
    let tags = bed.tags(lb_arn).await;
    assert_eq!(tags["elbv2.k8s.aws/cluster"], bed.cluster);
    assert_eq!(tags["ingress.k8s.aws/stack"], format!("{}/shop", bed.ns));
    assert_eq!(tags["ingress.k8s.aws/resource"], "LoadBalancer");
    assert_eq!(bed.stack_security_groups(&format!("{}/shop", bed.ns)).await.len(), 1);

    let listeners = bed.listeners(lb_arn).await;
    assert_eq!(listeners.len(), 1);
    assert_eq!(listeners[0].port(), Some(80));
    assert_eq!(listeners[0].protocol().unwrap().as_str(), "HTTP");
    let default = &listeners[0].default_actions()[0];
    assert_eq!(default.fixed_response_config().and_then(|c| c.status_code()), Some("404"));

    // LBC order: the Exact path before the Prefix path.
    let rules = bed.rules(listeners[0].listener_arn().unwrap()).await;
    assert_eq!(rules.len(), 2);
    assert_eq!(path_values(&rules[0]), vec!["/health"]);
    assert_eq!(path_values(&rules[1]), vec!["/api", "/api/*"]);
    let tg_arn = forward_arn(&rules[0]).unwrap();
    assert_eq!(forward_arn(&rules[1]).as_deref(), Some(tg_arn.as_str()));

    let tg = bed.target_group(&tg_arn).await;
    assert_eq!(tg.target_type().unwrap().as_str(), "ip");
    assert_eq!(tg.port(), Some(8080));
    assert_eq!(bed.tags(&tg_arn).await["ingress.k8s.aws/resource"], format!("{}/shop-web:80", bed.ns));
    // The targets are the Deployment's two pods, at the IPs KWOK gave them.
    let pods = bed.wait_pod_targets("app=web", 2, 8080).await;
    wait_targets(&bed, &tg_arn, &pods).await;
}

#[tokio::test]
async fn editing_a_path_changes_that_rule_only() {
    let bed = Bed::start("edit").await;
    apply_app(&bed).await;
    let before = provisioned(&bed).await;
    let api = bed.api::<Ingress>();
    let patch = serde_json::json!({"spec": {"rules": [{"http": {"paths": [
        {"path": "/shop", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "/health", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
    ]}}]}});
    api.patch("shop", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();

    let rules = eventually("the /api rule becomes /shop", Duration::from_secs(60), || async {
        let rules = bed.rules(&before.listener).await;
        (rules.len() == 2 && path_values(&rules[1]) == ["/shop", "/shop/*"]).then_some(rules)
    })
    .await;
    let after = provisioned(&bed).await;
    assert_eq!(after.lb, before.lb, "load balancer kept");
    assert_eq!(after.listener, before.listener, "listener kept");
    assert_eq!(after.tg, before.tg, "target group kept");
    assert_eq!(after.rules, before.rules, "rules modified in place, same ARNs");
    assert_eq!(path_values(&rules[0]), vec!["/health"]);
}

#[tokio::test]
async fn registered_targets_follow_the_endpoint_slice() {
    let bed = Bed::start("targets").await;
    // Two Deployments behind the Service, each pinned to one of the bed's nodes, so that
    // which node's interface holds a new pod's IP is known.
    let (node_a, node_b) = (&bed.nodes[0], &bed.nodes[1]);
    bed.apply(WEB_SERVICE).await;
    bed.apply(&pinned_deployment("a", node_a, 2)).await;
    bed.apply(&pinned_deployment("b", node_b, 0)).await;
    bed.apply(SHOP).await;
    let p = provisioned(&bed).await;
    wait_targets(&bed, &p.tg, &bed.wait_pod_targets("app=web", 2, 8080).await).await;
    let reconciles = bed.wait_quiet().await;
    let calls_before = bed.aws_calls().await;
    // Pods on the node no lookup has described yet, one more on the known node, then most
    // of them gone: every step is the EndpointSlice controller's, from a scale.
    for (scales, pods) in [(vec![("web-b", 2)], 4), (vec![("web-a", 3)], 5), (vec![("web-a", 0), ("web-b", 1)], 1)] {
        for (deployment, replicas) in &scales {
            bed.scale(deployment, *replicas).await;
        }
        let want = targets_of(&bed.wait_settled_pods("app=web", pods).await);
        wait_targets(&bed, &p.tg, &want).await;
    }
    // The fast path: no reconcile of the Ingress, no AWS call but the target changes, and
    // one interface lookup, for web-b's pods on the node not described before. A described
    // interface brings every address of its node's pod block into the cache (as VPC CNI
    // keeps them), so the other pod there and web-a's new pod on the known node cost none.
    assert_eq!(bed.wait_quiet().await, reconciles, "endpoint changes never reconcile the whole group");
    let after = bed.aws_calls().await;
    let calls: Vec<_> = after.iter().filter(|(op, n)| calls_before.get(*op) != Some(n)).map(|(op, _)| op.as_str()).collect();
    assert_eq!(calls, ["DeregisterTargets", "DescribeNetworkInterfaces", "RegisterTargets"], "only target calls");
    let lookups = after["DescribeNetworkInterfaces"] - calls_before.get("DescribeNetworkInterfaces").copied().unwrap_or_default();
    assert_eq!(lookups, 1, "one lookup for the new node's pods; pods on a described node cost none");
}

#[tokio::test]
async fn deleting_the_ingress_deletes_every_aws_resource_of_its_stack() {
    let bed = Bed::start("delete").await;
    apply_app(&bed).await;
    provisioned(&bed).await;
    let stack = format!("{}/shop", bed.ns);
    assert_eq!(bed.stack_arns(&stack).await.len(), 2, "a load balancer and a target group");

    bed.api::<Ingress>().delete("shop", &DeleteParams::default()).await.unwrap();
    eventually("the Ingress is gone (finalizer removed)", Duration::from_secs(60), || async {
        bed.api::<Ingress>().get_opt("shop").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(bed.stack_arns(&stack).await.is_empty(), "no load balancer or target group tagged with the stack");
    assert!(bed.stack_security_groups(&stack).await.is_empty(), "no security group tagged with the stack");
    assert!(bed.load_balancers().await.is_empty());
}

/// Security groups of the VPC with an inbound rule from `group`.
async fn groups_opened_to(bed: &Bed, group: &str) -> Vec<String> {
    let filter = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&bed.vpc_id).build();
    let out = bed.ec2.describe_security_groups().filters(filter).send().await.unwrap();
    out.security_groups()
        .iter()
        .filter(|g| g.ip_permissions().iter().flat_map(|p| p.user_id_group_pairs()).any(|pair| pair.group_id() == Some(group)))
        .filter_map(|g| g.group_id.clone())
        .collect()
}

#[tokio::test]
async fn deleting_the_namespace_removes_every_aws_resource_and_releases_the_finalizer() {
    let bed = Bed::start("ns-delete").await;
    apply_app(&bed).await;
    let p = provisioned(&bed).await;
    wait_targets(&bed, &p.tg, &bed.wait_pod_targets("app=web", 2, 8080).await).await;
    let stack = format!("{}/shop", bed.ns);
    assert_eq!(bed.stack_arns(&stack).await.len(), 2, "a load balancer and a target group");
    // The load balancer, the target group, the stack's managed security group and the
    // cluster's backend group, which the pods' node security group is opened to.
    let tagged = bed.cluster_resources().await;
    assert_eq!(tagged.len(), 4, "{tagged:?}");
    let managed = bed.stack_security_groups(&stack).await;
    let backend = tagged.iter().find(|r| r.starts_with("sg-") && !managed.contains(r)).expect("the backend group").clone();
    assert!(!groups_opened_to(&bed, &backend).await.is_empty(), "the nodes' group is opened to the backend group");

    // As a user cleans up: the namespace goes, with the Ingress, the Service, the
    // Deployment and its pods all deleted at once by the namespace controller.
    let namespaces = Api::<Namespace>::all(bed.client.clone());
    namespaces.delete(&bed.ns, &DeleteParams::default()).await.unwrap();
    eventually(&format!("the namespace is gone (log: {})", bed.log.display()), Duration::from_secs(90), || async {
        namespaces.get_opt(&bed.ns).await.unwrap().is_none().then_some(())
    })
    .await;
    // It could go only once the Ingress had gone, that is once its finalizer was released.
    assert_eq!(bed.cluster_resources().await, Vec::<String>::new(), "nothing tagged with the cluster is left");
    assert_eq!(groups_opened_to(&bed, &backend).await, Vec::<String>::new(), "no rule refers to the deleted backend group");
}

#[tokio::test]
async fn reconciling_an_unchanged_ingress_makes_no_aws_call() {
    let bed = Bed::start("noop").await;
    apply_app(&bed).await;
    let p = provisioned(&bed).await;
    wait_targets(&bed, &p.tg, &bed.wait_pod_targets("app=web", 2, 8080).await).await;
    let reconciles_before = bed.wait_quiet().await;
    let before = bed.aws_calls().await;
    assert!(before.get("CreateLoadBalancer").copied().unwrap_or(0) == 1, "the counter saw the creation: {before:?}");

    // An edit that changes nothing AWS cares about still triggers a reconcile.
    let touch = serde_json::json!({"metadata": {"annotations": {"example.com/touched": "yes"}}});
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::Merge(touch)).await.unwrap();
    eventually("the touched Ingress is reconciled", Duration::from_secs(30), || async {
        (bed.reconciles().await > reconciles_before).then_some(())
    })
    .await;
    bed.wait_quiet().await;
    let after = bed.aws_calls().await;
    let new_calls: Vec<_> = after.iter().filter(|(op, n)| before.get(*op).copied().unwrap_or(0) != **n).collect();
    assert!(new_calls.iter().all(|(op, _)| !is_mutating(op)), "mutating calls on a no-op reconcile: {new_calls:?}");
    assert!(new_calls.is_empty(), "no AWS call at all on a no-op reconcile: {new_calls:?}");
}

#[tokio::test]
async fn bad_input_is_reported_on_its_ingress_while_others_converge() {
    let bed = Bed::start("isolate").await;
    apply_app(&bed).await;
    bed.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: missing-svc}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: nope, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bad-annotation
  annotations: {alb.ingress.kubernetes.io/scheme: public}
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    )
    .await;

    // The good one converges regardless.
    provisioned(&bed).await;

    // Missing Service: the rule answers 503 and a Warning names the Service.
    let msg = bed.wait_warning("missing-svc", "nope").await;
    assert!(msg.contains(&format!("{}/nope", bed.ns)), "{msg}");
    let dns = bed.wait_hostname("missing-svc").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let listener = bed.listeners(lb.load_balancer_arn().unwrap()).await.remove(0);
    let rules = bed.rules(listener.listener_arn().unwrap()).await;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].actions()[0].fixed_response_config().and_then(|c| c.status_code()), Some("503"));

    // Unparsable annotation: a Warning names the annotation and the value; nothing is created.
    let msg = bed.wait_warning("bad-annotation", "alb.ingress.kubernetes.io/scheme").await;
    assert!(msg.contains("\"public\""), "{msg}");
    assert_eq!(bed.hostname("bad-annotation").await, None);
    assert!(bed.stack_arns(&format!("{}/bad-annotation", bed.ns)).await.is_empty());
}

#[tokio::test]
async fn a_rolling_replacement_never_empties_the_target_group() {
    let bed = Bed::start("rolling").await;
    apply_app(&bed).await;
    let p = provisioned(&bed).await;
    let old = bed.wait_ready_pods("app=web", 2).await;
    wait_targets(&bed, &p.tg, &targets_of(&old)).await;
    // Every pod replaced at once, with no capacity given up: both new pods start together,
    // and both old ones are told to stop together once the new ones are Ready, so the
    // controller sees all the endpoints change within moments.
    let strategy = serde_json::json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}}}});
    bed.api::<Deployment>().patch("web", &PatchParams::default(), &Patch::Merge(strategy)).await.unwrap();
    bed.rollout_restart("web").await;
    bed.wait_rollout("web").await;
    let new = bed.wait_settled_pods("app=web", 2).await;
    assert!(new.is_disjoint(&old), "new pods at new addresses: {old:?} then {new:?}");
    let want = targets_of(&new);
    eventually("the new pods replace the old, never through an empty group", Duration::from_secs(30), || async {
        let now = bed.targets(&p.tg).await;
        assert!(!now.is_empty(), "the target group was empty during the replacement");
        (now == want).then_some(())
    })
    .await;
}

/// Sets the readiness gate condition `example.com/in-rotation` of a pod.
async fn set_gate(bed: &Bed, pod: &str, status: &str) {
    let patch = serde_json::json!({"status": {"conditions": [{"type": "example.com/in-rotation", "status": status}]}});
    bed.api::<Pod>().patch_status(pod, &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
}

#[tokio::test]
async fn not_ready_and_terminating_endpoints_are_not_targets() {
    let bed = Bed::start("terminating").await;
    bed.apply(WEB_SERVICE).await;
    // Three pods whose readiness the test holds (a readiness gate of its own), so that one
    // can turn unready while it runs.
    bed.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      readinessGates: [{conditionType: example.com/in-rotation}]
      terminationGracePeriodSeconds: 60
      containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
"#,
    )
    .await;
    bed.apply(SHOP).await;
    let pods = bed.api::<Pod>();
    let names: Vec<String> = eventually("three pods run", Duration::from_secs(60), || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await.ok()?;
        let running: Vec<String> =
            list.items.iter().filter(|p| support::pod_ip(p).is_some()).filter_map(|p| p.metadata.name.clone()).collect();
        (running.len() == 3).then_some(running)
    })
    .await;
    for name in &names {
        set_gate(&bed, name, "True").await;
    }
    let p = provisioned(&bed).await;
    let ip_of = |name: &str| {
        let pods = pods.clone();
        let name = name.to_string();
        async move { support::pod_ip(&pods.get(&name).await.unwrap()).unwrap() }
    };
    let (unready, terminating, serving) = (&names[0], &names[1], &names[2]);
    let (unready_ip, terminating_ip, serving_ip) = (ip_of(unready).await, ip_of(terminating).await, ip_of(serving).await);
    wait_targets(&bed, &p.tg, &bed.wait_pod_targets("app=web", 3, 8080).await).await;

    // One pod fails its readiness; another is deleted and drains for a minute (it keeps
    // serving, terminating, as the EndpointSlice controller reports it).
    set_gate(&bed, unready, "False").await;
    let drain = serde_json::json!({"metadata": {"annotations": {"pod-delete.stage.kwok.x-k8s.io/delay": "60s"}}});
    pods.patch(terminating, &PatchParams::default(), &Patch::Merge(drain)).await.unwrap();
    pods.delete(terminating, &DeleteParams::default()).await.unwrap();

    // Both are deregistered while their endpoints are still in the slice.
    wait_targets(&bed, &p.tg, &targets_of(&BTreeSet::from([serving_ip.clone()]))).await;
    let lp = ListParams::default().labels("kubernetes.io/service-name=web");
    let endpoints: Vec<_> = bed.api::<EndpointSlice>().list(&lp).await.unwrap().items.into_iter().flat_map(|s| s.endpoints).collect();
    let conditions = |ip: &str| {
        let e = endpoints.iter().find(|e| e.addresses.contains(&ip.to_string()));
        e.map(|e| e.conditions.clone().unwrap_or_default()).map(|c| (c.ready, c.serving, c.terminating))
    };
    assert_eq!(conditions(&unready_ip), Some((Some(false), Some(false), Some(false))), "the unready pod is in the slice");
    assert_eq!(conditions(&terminating_ip), Some((Some(false), Some(true), Some(true))), "the terminating pod is in the slice");
    assert_eq!(conditions(&serving_ip), Some((Some(true), Some(true), Some(false))));
    // The drain is over (so the namespace can go at the end of the test).
    pods.delete(terminating, &DeleteParams::default().grace_period(0)).await.unwrap();
}

#[tokio::test]
async fn a_missing_endpoint_slice_is_not_zero_endpoints() {
    let bed = Bed::start("relist").await;
    // A Service without a selector, its slices written by hand (for the Deployment's pods):
    // the EndpointSlice controller would make a deleted slice of a selector's Service again
    // at once, so a Service with no slice at all (as the cache sees it in a relist) is a
    // shape only a hand-written slice gives.
    bed.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
"#,
    )
    .await;
    bed.apply(WEB_DEPLOYMENT).await;
    bed.apply(SHOP).await;
    let pods = bed.wait_ready_pods("app=web", 2).await;
    let endpoints: Vec<_> = pods.iter().map(|ip| serde_json::json!({"addresses": [ip], "conditions": {"ready": true}})).collect();
    let slice = serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": endpoints});
    bed.apply(&serde_json::to_string(&slice).unwrap()).await;
    let p = provisioned(&bed).await;
    let both = targets_of(&pods);
    wait_targets(&bed, &p.tg, &both).await;
    // The slice disappears from the cache (as in a relist): the targets stay.
    bed.api::<EndpointSlice>().delete("web-1", &DeleteParams::default()).await.unwrap();
    let updates = bed.target_updates().await;
    eventually("the deletion is taken by the endpoint fast path", Duration::from_secs(30), || async {
        (bed.target_updates().await > updates).then_some(())
    })
    .await;
    bed.wait_quiet().await;
    assert_eq!(bed.targets(&p.tg).await, both, "no slice is not zero endpoints");
    // A slice that exists and is empty does empty the target group.
    bed.apply(
        r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-2, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: []
"#,
    )
    .await;
    eventually("an empty slice empties the group", Duration::from_secs(30), || async { bed.targets(&p.tg).await.is_empty().then_some(()) })
        .await;
}

#[tokio::test]
async fn after_a_restart_targets_are_registered_before_listeners_and_rules_are_read() {
    let mut bed = Bed::start("restart").await;
    apply_app(&bed).await;
    let p = provisioned(&bed).await;
    let old = bed.wait_ready_pods("app=web", 2).await;
    wait_targets(&bed, &p.tg, &targets_of(&old)).await;
    bed.kill_controller();
    // The pods move while no controller runs (a leader change, an upgrade). KWOK, like the
    // VPC CNI after its cooldown, hands a freed address to the next pod, so a rollout alone
    // may bring back the old addresses; the third replica cannot have one of them.
    bed.scale("web", 3).await;
    bed.rollout_restart("web").await;
    bed.wait_rollout("web").await;
    let new = bed.wait_settled_pods("app=web", 3).await;
    assert!(!new.is_subset(&old), "a pod at a new address: {old:?} then {new:?}");
    bed.restart_controller("restarted").await;
    wait_targets(&bed, &p.tg, &targets_of(&new)).await;
    bed.wait_quiet().await;
    // Kubernetes first: the group's target groups are read and the pods registered before
    // its listeners and rules are read.
    let log = std::fs::read_to_string(&bed.log).unwrap();
    let calls: Vec<&str> =
        log.lines().filter(|l| l.contains("AWS call")).filter_map(|l| l.split("operation=").nth(1)?.split_whitespace().next()).collect();
    let position = |op: &str| calls.iter().position(|c| *c == op);
    let (register, listeners) = (position("RegisterTargets"), position("DescribeListeners"));
    assert!(register.is_some() && listeners.is_some(), "both called: {calls:?}");
    assert!(register < listeners, "RegisterTargets before DescribeListeners: {calls:?}");
    assert_eq!(calls.iter().filter(|c| **c == "DescribeTargetHealth").count(), 1, "one target group read: {calls:?}");
}

#[tokio::test]
async fn metrics_count_aws_calls_reconciles_targets_and_queues() {
    let mut bed = Bed::start("metrics").await;
    if let Err(e) = bed.wait_metrics_up().await {
        panic!("{e}");
    }
    let port = bed.metrics_port();
    let health = support::get(port, "/healthz").await;
    assert!(health.starts_with("HTTP/1.0 200") || health.starts_with("HTTP/1.1 200"), "{health}");
    apply_app(&bed).await;
    let p = provisioned(&bed).await;
    wait_targets(&bed, &p.tg, &bed.wait_pod_targets("app=web", 2, 8080).await).await;
    bed.wait_quiet().await;
    let ready = support::get(port, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.0 200") || ready.starts_with("HTTP/1.1 200"), "{ready}");
    let text = bed.metrics().await;
    let value = |metric: &str, label: (&str, &str)| -> f64 {
        support::samples(&text, metric).iter().filter(|(l, _)| l.get(label.0).map(String::as_str) == Some(label.1)).map(|(_, v)| v).sum()
    };
    assert_eq!(value("alb_controller_aws_api_calls_total", ("operation", "CreateLoadBalancer")), 1.0, "{text}");
    assert!(value("alb_controller_aws_api_calls_total", ("outcome", "success")) >= 7.0, "{text}");
    assert!(value("alb_controller_reconciles_total", ("result", "success")) >= 1.0, "{text}");
    assert!(support::samples(&text, "alb_controller_reconcile_duration_seconds_count").iter().any(|(_, v)| *v >= 1.0), "{text}");
    assert_eq!(value("alb_controller_targets_changed_total", ("change", "registered")), 2.0, "{text}");
    // Work queues: present, and empty once the controller is quiet.
    assert_eq!(support::samples(&text, "alb_controller_workqueue_depth").len(), 2, "both queues: {text}");
    assert_eq!(value("alb_controller_workqueue_depth", ("queue", "ingresses")), 0.0, "{text}");
    assert_eq!(value("alb_controller_workqueue_depth", ("queue", "target_groups")), 0.0, "{text}");
    // An endpoint change (one pod more) moves the fast path's counter.
    bed.scale("web", 3).await;
    eventually("the fast path counts its update", Duration::from_secs(30), || async {
        let text = bed.metrics().await;
        let ok = support::samples(&text, "alb_controller_target_updates_total").iter().any(|(l, v)| l["result"] == "success" && *v >= 1.0);
        ok.then_some(())
    })
    .await;
}
