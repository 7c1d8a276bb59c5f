//! Integration tests on the real bed: a kube-apiserver and LocalStack, the controller
//! as its own process. Every outcome is read back through the Kubernetes and AWS APIs.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams};
use support::{Bed, eventually, is_mutating};

const APP: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.0.128.10]
  conditions: {ready: true}
- addresses: [10.0.128.11]
  conditions: {ready: true}
---
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

fn ips(ips: &[&str]) -> BTreeSet<(String, i32)> {
    ips.iter().map(|ip| (ip.to_string(), 8080)).collect()
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
    bed.apply(APP).await;
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
    let targets = eventually("targets registered", Duration::from_secs(30), || async {
        let t = bed.targets(&tg_arn).await;
        (t.len() == 2).then_some(t)
    })
    .await;
    assert_eq!(targets, ips(&["10.0.128.10", "10.0.128.11"]));
}

#[tokio::test]
async fn editing_a_path_changes_that_rule_only() {
    let bed = Bed::start("edit").await;
    bed.apply(APP).await;
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
    bed.apply(APP).await;
    let p = provisioned(&bed).await;
    eventually("targets registered", Duration::from_secs(30), || async { (bed.targets(&p.tg).await.len() == 2).then_some(()) }).await;
    let reconciles = bed.wait_quiet().await;
    let calls_before = bed.aws_calls().await;
    let slices = bed.api::<EndpointSlice>();
    for want in [vec!["10.0.128.10", "10.0.128.11"], vec!["10.0.128.10", "10.0.128.11", "10.0.128.12", "10.0.128.13"], vec!["10.0.128.13"]]
    {
        let endpoints: Vec<_> = want.iter().map(|ip| serde_json::json!({"addresses": [ip], "conditions": {"ready": true}})).collect();
        slices.patch("web-1", &PatchParams::default(), &Patch::Merge(serde_json::json!({"endpoints": endpoints}))).await.unwrap();
        let expected = ips(&want);
        eventually(&format!("targets become {want:?}"), Duration::from_secs(30), || async {
            (bed.targets(&p.tg).await == expected).then_some(())
        })
        .await;
    }
    // The fast path: no reconcile of the Ingress, no AWS call but the target changes, and
    // one interface lookup for the two pod IPs never seen before (batched, then cached).
    assert_eq!(bed.wait_quiet().await, reconciles, "endpoint changes never reconcile the whole group");
    let after = bed.aws_calls().await;
    let calls: Vec<_> = after.iter().filter(|(op, n)| calls_before.get(*op) != Some(n)).map(|(op, _)| op.as_str()).collect();
    assert_eq!(calls, ["DeregisterTargets", "DescribeNetworkInterfaces", "RegisterTargets"], "only target calls");
    let lookups = after["DescribeNetworkInterfaces"] - calls_before.get("DescribeNetworkInterfaces").copied().unwrap_or_default();
    assert_eq!(lookups, 1, "one lookup for 10.0.128.12 and .13 together; known IPs cost none");
}

#[tokio::test]
async fn deleting_the_ingress_deletes_every_aws_resource_of_its_stack() {
    let bed = Bed::start("delete").await;
    bed.apply(APP).await;
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

#[tokio::test]
async fn reconciling_an_unchanged_ingress_makes_no_aws_call() {
    let bed = Bed::start("noop").await;
    bed.apply(APP).await;
    let p = provisioned(&bed).await;
    eventually("targets registered", Duration::from_secs(30), || async { (bed.targets(&p.tg).await.len() == 2).then_some(()) }).await;
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
    bed.apply(APP).await;
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
    bed.apply(APP).await;
    let p = provisioned(&bed).await;
    eventually("the first two targets", Duration::from_secs(30), || async {
        (bed.targets(&p.tg).await == ips(&["10.0.128.10", "10.0.128.11"])).then_some(())
    })
    .await;
    // Every endpoint replaced in one write (a Deployment's pods all swapped).
    let endpoints = serde_json::json!({"endpoints": [
        {"addresses": ["10.0.128.20"], "conditions": {"ready": true}},
        {"addresses": ["10.0.128.21"], "conditions": {"ready": true}}]});
    bed.api::<EndpointSlice>().patch("web-1", &PatchParams::default(), &Patch::Merge(endpoints)).await.unwrap();
    let want = ips(&["10.0.128.20", "10.0.128.21"]);
    eventually("the new endpoints replace the old, never through an empty group", Duration::from_secs(30), || async {
        let now = bed.targets(&p.tg).await;
        assert!(!now.is_empty(), "the target group was empty during the replacement");
        (now == want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn not_ready_and_terminating_endpoints_are_not_targets() {
    let bed = Bed::start("terminating").await;
    bed.apply(APP).await;
    let p = provisioned(&bed).await;
    let endpoints = serde_json::json!({"endpoints": [
        {"addresses": ["10.0.128.10"], "conditions": {"ready": true}},
        {"addresses": ["10.0.128.11"], "conditions": {"ready": false, "serving": true, "terminating": true}},
        {"addresses": ["10.0.128.12"], "conditions": {"ready": false}}]});
    bed.api::<EndpointSlice>().patch("web-1", &PatchParams::default(), &Patch::Merge(endpoints)).await.unwrap();
    // The terminating endpoint is deregistered while it still exists in the slice.
    let want = ips(&["10.0.128.10"]);
    eventually("only the ready endpoint stays", Duration::from_secs(30), || async { (bed.targets(&p.tg).await == want).then_some(()) })
        .await;
    let slice = bed.api::<EndpointSlice>().get("web-1").await.unwrap();
    assert_eq!(slice.endpoints.len(), 3, "the terminating endpoint is still in the slice");
}

#[tokio::test]
async fn a_missing_endpoint_slice_is_not_zero_endpoints() {
    let bed = Bed::start("relist").await;
    bed.apply(APP).await;
    let p = provisioned(&bed).await;
    let both = ips(&["10.0.128.10", "10.0.128.11"]);
    eventually("two targets", Duration::from_secs(30), || async { (bed.targets(&p.tg).await == both).then_some(()) }).await;
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
    bed.apply(APP).await;
    let p = provisioned(&bed).await;
    eventually("two targets", Duration::from_secs(30), || async { (bed.targets(&p.tg).await.len() == 2).then_some(()) }).await;
    bed.kill_controller();
    // The pods move while no controller runs (a leader change, an upgrade).
    let endpoints = serde_json::json!({"endpoints": [
        {"addresses": ["10.0.128.11"], "conditions": {"ready": true}},
        {"addresses": ["10.0.128.12"], "conditions": {"ready": true}}]});
    bed.api::<EndpointSlice>().patch("web-1", &PatchParams::default(), &Patch::Merge(endpoints)).await.unwrap();
    bed.restart_controller("restarted").await;
    let want = ips(&["10.0.128.11", "10.0.128.12"]);
    eventually("the new endpoints are targets", Duration::from_secs(30), || async { (bed.targets(&p.tg).await == want).then_some(()) })
        .await;
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
    bed.apply(APP).await;
    let p = provisioned(&bed).await;
    eventually("targets registered", Duration::from_secs(30), || async { (bed.targets(&p.tg).await.len() == 2).then_some(()) }).await;
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
    // An endpoint change moves the fast path's counter.
    let endpoints = serde_json::json!({"endpoints": [{"addresses": ["10.0.128.30"], "conditions": {"ready": true}}]});
    bed.api::<EndpointSlice>().patch("web-1", &PatchParams::default(), &Patch::Merge(endpoints)).await.unwrap();
    eventually("the fast path counts its update", Duration::from_secs(30), || async {
        let text = bed.metrics().await;
        let ok = support::samples(&text, "alb_controller_target_updates_total").iter().any(|(l, v)| l["result"] == "success" && *v >= 1.0);
        ok.then_some(())
    })
    .await;
}
