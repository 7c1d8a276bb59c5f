//! Faults between the controller and AWS (tests/support/faults.rs): a create whose reply
//! is lost after AWS served it is recovered at once (the resource is found and adopted,
//! never made twice), a stack deleted meanwhile leaves nothing behind, and many Ingresses
//! under mixed faults converge with no duplicate and no leak.
//!
//! "At once" is measured against a 30 s deadline: well under the 10 minutes after which the
//! inventory is re-read anyway, and under the controller's 10–15 s requeue after a failed
//! reconcile where that matters (listeners, rules: no failed reconcile is allowed at all).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancingv2::types::{LoadBalancer, Rule};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams};
use support::faults::Fault;
use support::{Bed, TAG_CLUSTER, WEB, eventually};

/// Well under the inventory's 10-minute re-read, and than a failed reconcile's requeue plus
/// the controller's own retries.
const AT_ONCE: Duration = Duration::from_secs(30);
const NO_BACKEND_GROUP: &str = "--enable-backend-security-group=false";

fn shop(annotations: &str) -> String {
    format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations: {{{annotations}}}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /api, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"#
    )
}

fn stack(bed: &Bed) -> String {
    format!("{}/shop", bed.ns)
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn path_values(rule: &Rule) -> Vec<String> {
    rule.conditions()
        .iter()
        .filter(|c| c.field() == Some("path-pattern"))
        .flat_map(|c| match c.path_pattern_config() {
            Some(p) if !p.values().is_empty() => p.values().to_vec(),
            _ => c.values().to_vec(),
        })
        .collect()
}

fn forward_arn(rule: &Rule) -> Option<String> {
    let a = rule.actions().first()?;
    a.target_group_arn().map(str::to_string).or_else(|| a.forward_config()?.target_groups().first()?.target_group_arn().map(str::to_string))
}

/// The load balancers tagged with this test's cluster and `stack`.
async fn stack_load_balancers(bed: &Bed, stack: &str) -> Vec<LoadBalancer> {
    let arns: BTreeSet<String> = bed.stack_arns(stack).await.into_iter().collect();
    bed.load_balancers().await.into_iter().filter(|lb| lb.load_balancer_arn().is_some_and(|a| arns.contains(a))).collect()
}

/// ARNs of the target groups tagged with this test's cluster and `stack`.
async fn stack_target_groups(bed: &Bed, stack: &str) -> Vec<String> {
    bed.stack_arns(stack).await.into_iter().filter(|a| a.contains(":targetgroup/")).collect()
}

/// The controller's successful calls of `operation`, from its metrics.
async fn successful_calls(bed: &Bed, operation: &str) -> u64 {
    support::samples(&bed.metrics().await, "alb_controller_aws_api_calls_total")
        .iter()
        .filter(|(labels, _)| {
            labels.get("operation").map(String::as_str) == Some(operation) && labels.get("outcome").map(String::as_str) == Some("success")
        })
        .map(|(_, v)| *v as u64)
        .sum()
}

/// Warning Events on `ingress` that name an AWS operation: a reconcile that failed on it.
async fn failures_of(bed: &Bed, ingress: &str, operation: &str) -> Vec<String> {
    bed.warnings(ingress).await.into_iter().filter(|m| m.contains(operation)).collect()
}

/// The hostname of `ingress`, within [`AT_ONCE`].
async fn hostname_at_once(bed: &Bed, ingress: &str) -> String {
    eventually(&format!("{ingress} gets a hostname at once (log: {})", bed.log.display()), AT_ONCE, || bed.hostname(ingress)).await
}

/// The converged `shop` Ingress read back: its load balancer, one HTTP:80 listener, and the
/// one `/api` rule forwarding to a target group that has the web pod as its target.
async fn converged_shop(bed: &Bed, dns: &str) -> LoadBalancer {
    let lb = bed.load_balancer_by_dns(dns).await;
    let listeners = bed.listeners(lb.load_balancer_arn().unwrap()).await;
    assert_eq!(listeners.iter().map(|l| l.port()).collect::<Vec<_>>(), [Some(80)], "one listener");
    let listener = listeners[0].listener_arn().unwrap().to_string();
    let rules = eventually("the /api rule is in place", AT_ONCE, || async {
        let rules = bed.rules(&listener).await;
        (!rules.is_empty()).then_some(rules)
    })
    .await;
    assert_eq!(rules.iter().map(path_values).collect::<Vec<_>>(), [["/api", "/api/*"]], "one rule, no duplicate");
    let tg = forward_arn(&rules[0]).expect("the rule forwards to a target group");
    let want = bed.wait_pod_targets("app=web", 1, 8080).await;
    eventually("the web pod is registered", AT_ONCE, || async { (bed.targets(&tg).await == want).then_some(()) }).await;
    lb
}

#[tokio::test]
async fn a_lost_reply_to_create_security_group_is_adopted_at_once() {
    let bed = Bed::start_with_faults("lost-create-sg", &[NO_BACKEND_GROUP]).await;
    bed.faults().next("CreateSecurityGroup", 1, Fault::ServedReply500);
    bed.apply(WEB).await;
    bed.apply(&shop("")).await;
    let dns = hostname_at_once(&bed, "shop").await;
    let lb = converged_shop(&bed, &dns).await;
    assert_eq!(bed.faults().injected("CreateSecurityGroup"), 1, "the reply was lost");
    let groups = bed.stack_security_groups(&stack(&bed)).await;
    assert_eq!(groups.len(), 1, "one managed security group, not two: {groups:?}");
    assert_eq!(lb.security_groups(), groups.as_slice(), "the load balancer uses the adopted group");
    let ingress = bed
        .ec2
        .describe_security_groups()
        .group_ids(&groups[0])
        .send()
        .await
        .unwrap()
        .security_groups()
        .iter()
        .flat_map(|g| g.ip_permissions().iter().map(|p| (p.from_port(), p.to_port())))
        .collect::<Vec<_>>();
    assert_eq!(ingress, [(Some(80), Some(80))], "the adopted group opens the listener port");
}

/// Every reply to CreateLoadBalancer is lost until the controller gives up on the call, and
/// meanwhile the Ingress changes its subnets, so the next CreateLoadBalancer is not the same
/// request: AWS (and the bed) answer DuplicateLoadBalancerName, and the load balancer made by
/// the lost call is adopted and updated. (A retry of the same request is answered with the
/// existing load balancer by AWS and the bed alike.)
#[tokio::test]
async fn a_load_balancer_made_by_a_lost_create_is_adopted_when_the_next_create_differs() {
    let bed = Bed::start_with_faults("lost-create-lb", &[]).await;
    let private: Vec<String> = bed.seed["private_subnets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    bed.faults().always("CreateLoadBalancer", Fault::ServedReply500);
    bed.apply(WEB).await;
    bed.apply(&shop(&format!("alb.ingress.kubernetes.io/subnets: '{},{}'", private[0], private[1]))).await;
    let stack = stack(&bed);
    eventually("the lost create made the load balancer", AT_ONCE, || async {
        (stack_load_balancers(&bed, &stack).await.len() == 1).then_some(())
    })
    .await;
    // While the controller still retries the first request.
    let subnets = format!("{},{}", private[1], private[2]);
    let patch = serde_json::json!({"metadata": {"annotations": {"alb.ingress.kubernetes.io/subnets": subnets}}});
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    bed.wait_warning("shop", "CreateLoadBalancer").await;
    bed.faults().clear();

    let dns = hostname_at_once(&bed, "shop").await;
    let lb = converged_shop(&bed, &dns).await;
    let want: BTreeSet<&str> = [private[1].as_str(), private[2].as_str()].into();
    eventually("the adopted load balancer gets the new subnets", AT_ONCE, || async {
        let lb = bed.load_balancer_by_dns(&dns).await;
        let now: BTreeSet<&str> = lb.availability_zones().iter().filter_map(|z| z.subnet_id()).collect();
        (now == want).then_some(())
    })
    .await;
    let lbs = stack_load_balancers(&bed, &stack).await;
    assert_eq!(lbs.len(), 1, "one load balancer, not two");
    assert_eq!(lbs[0].load_balancer_arn(), lb.load_balancer_arn());
    assert!(bed.faults().injected("CreateLoadBalancer") >= 1);
}

/// As the load balancer test: every reply to CreateTargetGroup is lost until the controller
/// gives up, and meanwhile the health check changes, so the next create differs from what
/// exists (AWS answers DuplicateTargetGroupName; the bed, as AWS does for the same request,
/// the existing group). Either way the existing group is adopted and its health check fixed.
#[tokio::test]
async fn a_target_group_made_by_a_lost_create_is_adopted_and_updated() {
    let bed = Bed::start_with_faults("lost-create-tg", &[]).await;
    bed.faults().always("CreateTargetGroup", Fault::ServedReply500);
    bed.apply(WEB).await;
    bed.apply(&shop("")).await;
    let stack = stack(&bed);
    eventually("the lost create made the target group", AT_ONCE, || async {
        (stack_target_groups(&bed, &stack).await.len() == 1).then_some(())
    })
    .await;
    // While the controller still retries the first request.
    let patch = serde_json::json!({"metadata": {"annotations": {"alb.ingress.kubernetes.io/healthcheck-path": "/healthz"}}});
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    bed.wait_warning("shop", "CreateTargetGroup").await;
    bed.faults().clear();

    let dns = hostname_at_once(&bed, "shop").await;
    converged_shop(&bed, &dns).await;
    let tgs = stack_target_groups(&bed, &stack).await;
    assert_eq!(tgs.len(), 1, "one target group, not two: {tgs:?}");
    eventually("the adopted target group gets the new health check path", AT_ONCE, || async {
        (bed.target_group(&tgs[0]).await.health_check_path() == Some("/healthz")).then_some(())
    })
    .await;
    assert!(bed.faults().injected("CreateTargetGroup") >= 1);
}

/// AWS (and the bed) answer a CreateListener identical to an earlier one with the existing
/// listener, so the retry after the lost reply finds it; an emulator that answers
/// DuplicateListener instead (moto) gets the listener on the port adopted. Either way: one
/// listener, at once, and no failed reconcile.
#[tokio::test]
async fn a_lost_reply_to_create_listener_leaves_one_listener() {
    converges_at_once_after_a_lost_reply("lost-create-listener", "CreateListener", Fault::ServedReply500).await;
}

#[tokio::test]
async fn a_lost_reply_to_create_rule_is_adopted_at_once() {
    converges_at_once_after_a_lost_reply("lost-create-rule", "CreateRule", Fault::ServedReplyReset).await;
}

/// The first `operation`'s reply is lost (`fault`): `shop` converges at once, with one of
/// each resource, and no reconcile failed on that operation.
async fn converges_at_once_after_a_lost_reply(test: &str, operation: &str, fault: Fault) {
    let bed = Bed::start_with_faults(test, &[]).await;
    bed.faults().next(operation, 1, fault);
    bed.apply(WEB).await;
    bed.apply(&shop("")).await;
    let dns = hostname_at_once(&bed, "shop").await;
    converged_shop(&bed, &dns).await;
    assert_eq!(bed.faults().injected(operation), 1, "the reply was lost");
    assert_eq!(failures_of(&bed, "shop", operation).await, Vec::<String>::new(), "no reconcile failed on it");
}

/// The first CreateSecurityGroup is the cluster's shared backend group's (it is made before
/// the stack's own): found by its name and tags after the lost reply.
#[tokio::test]
async fn a_lost_reply_to_create_the_backend_security_group_is_adopted_at_once() {
    let bed = Bed::start_with_faults("lost-create-backend-sg", &[]).await;
    bed.faults().next("CreateSecurityGroup", 1, Fault::ServedReply500);
    bed.apply(WEB).await;
    bed.apply(&shop("")).await;
    let dns = hostname_at_once(&bed, "shop").await;
    let lb = converged_shop(&bed, &dns).await;
    assert_eq!(bed.faults().injected("CreateSecurityGroup"), 1, "the reply was lost");
    let backend = bed
        .ec2
        .describe_security_groups()
        .filters(filter(&format!("tag:{TAG_CLUSTER}"), &bed.cluster))
        .filters(filter("tag:elbv2.k8s.aws/resource", "backend-sg"))
        .send()
        .await
        .unwrap();
    let backend: Vec<String> = backend.security_groups().iter().filter_map(|g| g.group_id.clone()).collect();
    assert_eq!(backend.len(), 1, "one backend group, not two: {backend:?}");
    assert!(lb.security_groups().contains(&backend[0]), "the load balancer has the backend group: {:?}", lb.security_groups());
    assert_eq!(bed.stack_security_groups(&stack(&bed)).await.len(), 1, "and its managed group");
}

/// The group made by a create whose every reply was lost is known to no cache; the Ingress
/// is deleted before it converges. Before its finalizer goes, AWS is read afresh by tag, and
/// the group found there is deleted.
#[tokio::test]
async fn a_stack_deleted_after_a_lost_create_leaves_nothing_behind() {
    let bed = Bed::start_with_faults("lost-create-deleted", &[NO_BACKEND_GROUP]).await;
    bed.faults().always("CreateSecurityGroup", Fault::ServedReply500);
    bed.apply(WEB).await;
    bed.apply(&shop("")).await;
    let stack = stack(&bed);
    eventually("the lost create made the security group", AT_ONCE, || async {
        (!bed.stack_security_groups(&stack).await.is_empty()).then_some(())
    })
    .await;
    bed.api::<Ingress>().delete("shop", &DeleteParams::default()).await.unwrap();
    eventually(&format!("the Ingress is gone (finalizer released; log: {})", bed.log.display()), Duration::from_secs(60), || async {
        bed.api::<Ingress>().get_opt("shop").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(bed.faults().injected("CreateSecurityGroup") >= 1);
    assert_eq!(bed.stack_security_groups(&stack).await, Vec::<String>::new(), "no security group tagged with the stack");
    assert_eq!(bed.stack_arns(&stack).await, Vec::<String>::new(), "no load balancer or target group tagged with the stack");
}

const INGRESSES: usize = 15;
/// The first GROUPED Ingresses share one group (one load balancer).
const GROUPED: usize = 5;

/// Ingress app-`i` in front of Service svc-`i` and its Deployment of one pod (`app=svc-i`).
fn app(i: usize) -> String {
    support::app_manifest(i, if i < GROUPED { "alb.ingress.kubernetes.io/group.name: shared" } else { "" })
}

/// Whether app-`i` is served as asked: on its load balancer, a rule for its path forwards to
/// a target group whose one target is its pod, Ready.
async fn app_converged(bed: &Bed, i: usize) -> bool {
    let Some(dns) = bed.hostname(&format!("app-{i}")).await else { return false };
    let Some(lb) = bed.load_balancers().await.into_iter().find(|lb| lb.dns_name() == Some(dns.as_str())) else { return false };
    let pods = bed.ready_pod_ips(&format!("app=svc-{i}")).await;
    if pods.len() != 1 {
        return false;
    }
    let want_target: BTreeSet<(String, i32)> = pods.into_iter().map(|ip| (ip, 8080)).collect();
    for listener in bed.listeners(lb.load_balancer_arn().unwrap()).await {
        for rule in bed.rules(listener.listener_arn().unwrap()).await {
            if path_values(&rule).contains(&format!("/app-{i}"))
                && let Some(tg) = forward_arn(&rule)
            {
                return bed.targets(&tg).await == want_target;
            }
        }
    }
    false
}

#[tokio::test]
async fn many_ingresses_under_mixed_faults_converge_with_no_duplicate_and_no_leak() {
    // ALB_CONTROLLER_BIN runs it against another build (e.g. one without the fixes).
    let bed = Bed::start_from_env_with_faults("mixed-faults", &[]).await;
    bed.faults().mixed(0.2, 10);
    let start = Instant::now();
    for i in 0..INGRESSES {
        bed.apply(&app(i)).await;
    }
    // Converged Ingresses are not read again.
    let pending = std::cell::RefCell::new((0..INGRESSES).collect::<BTreeSet<usize>>());
    eventually(&format!("every Ingress converges under 20 % faults (log: {})", bed.log.display()), Duration::from_secs(600), || async {
        let waiting: Vec<usize> = pending.borrow().iter().copied().collect();
        for i in waiting {
            if app_converged(&bed, i).await {
                pending.borrow_mut().remove(&i);
            }
        }
        pending.borrow().is_empty().then_some(())
    })
    .await;
    let converged = start.elapsed();

    // No duplicate: one load balancer per stack, and nothing else tagged with the cluster
    // beyond what the stacks need.
    let stacks: BTreeSet<String> = (GROUPED..INGRESSES).map(|i| format!("{}/app-{i}", bed.ns)).chain(["shared".to_string()]).collect();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &stacks {
        assert_eq!(stack_load_balancers(&bed, s).await.len(), 1, "one load balancer for stack {s}");
        *by_kind.entry("target groups").or_default() += stack_target_groups(&bed, s).await.len();
        *by_kind.entry("managed security groups").or_default() += bed.stack_security_groups(s).await.len();
    }
    assert_eq!(by_kind["target groups"], INGRESSES, "one target group per Ingress");
    assert_eq!(by_kind["managed security groups"], stacks.len(), "one managed security group per stack");
    let tagged = bed.cluster_resources().await;
    // Load balancers + target groups + managed groups + the one shared backend group.
    assert_eq!(tagged.len(), stacks.len() + INGRESSES + stacks.len() + 1, "nothing else tagged with the cluster: {tagged:?}");
    let while_converging = bed.faults().injected_by_kind();

    let reads_before = successful_calls(&bed, "DescribeLoadBalancers").await;
    let ingresses = bed.api::<Ingress>();
    for i in 0..INGRESSES {
        ingresses.delete(&format!("app-{i}"), &DeleteParams::default()).await.unwrap();
    }
    eventually(&format!("every Ingress is released (log: {})", bed.log.display()), Duration::from_secs(300), || async {
        ingresses.list(&Default::default()).await.unwrap().items.is_empty().then_some(())
    })
    .await;
    let deleted = start.elapsed() - converged;
    // Each stack's deletion ends with a fresh read of AWS (shared when they overlap).
    let reads = successful_calls(&bed, "DescribeLoadBalancers").await - reads_before;
    let injected = bed.faults().injected_by_kind();
    eprintln!(
        "{INGRESSES} Ingresses under 20 % faults: converged in {:.1}s, deleted in {:.1}s ({reads} inventory reads); {} calls; injected while converging {while_converging:?}, in all {injected:?}",
        converged.as_secs_f64(),
        deleted.as_secs_f64(),
        bed.faults().calls_total()
    );
    assert!(["served-reply-500", "served-reply-reset", "reset", "throttle"].iter().all(|k| injected.get(k).copied().unwrap_or(0) > 0));
    assert_eq!(bed.cluster_resources().await, Vec::<String>::new(), "nothing tagged with the cluster remains");
}

/// A create answered "already exists" by something that is not ours: it is reported, naming
/// it, and never taken over.
#[tokio::test]
async fn a_load_balancer_of_the_same_name_that_is_not_ours_is_reported_and_left_alone() {
    let bed = Bed::start_with_faults("not-ours", &[]).await;
    let private: Vec<String> = bed.seed["private_subnets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let name = format!("by-hand-{}", &bed.cluster[1..]);
    let made = bed
        .elbv2
        .create_load_balancer()
        .name(&name)
        .scheme("internal".into())
        .subnets(&private[0])
        .subnets(&private[1])
        .send()
        .await
        .unwrap();
    let arn = made.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    bed.apply(WEB).await;
    bed.apply(&shop(&format!("alb.ingress.kubernetes.io/load-balancer-name: {name}"))).await;
    let warning = bed.wait_warning("shop", "is not tagged").await;
    assert!(warning.contains(&name) && warning.contains(&arn), "the Warning names the load balancer: {warning}");
    assert!(bed.hostname("shop").await.is_none(), "no hostname from a load balancer that is not ours");
    assert_eq!(bed.tags(&arn).await, BTreeMap::new(), "left untagged");
    assert_eq!(bed.load_balancers().await.len(), 1, "and no second load balancer");
}

/// Every deleted stack is checked against a fresh read of AWS, but deletions running at the
/// same time share one: a read started after each of them was requested. Reads are slowed
/// down here so that the deletions overlap them.
#[tokio::test]
async fn stacks_deleted_together_share_the_fresh_reads_of_aws() {
    const N: usize = 8;
    let bed = Bed::start_with_faults("shared-reads", &[]).await;
    // Standalone Ingresses (app-GROUPED.. are not in the group).
    let apps: Vec<usize> = (GROUPED..GROUPED + N).collect();
    for &i in &apps {
        bed.apply(&app(i)).await;
    }
    eventually(&format!("every Ingress converges (log: {})", bed.log.display()), Duration::from_secs(120), || async {
        for &i in &apps {
            if !app_converged(&bed, i).await {
                return None;
            }
        }
        Some(())
    })
    .await;
    bed.faults().always("DescribeLoadBalancers", Fault::Delay(Duration::from_secs(2)));
    let reads_before = successful_calls(&bed, "DescribeLoadBalancers").await;
    let ingresses = bed.api::<Ingress>();
    for &i in &apps {
        ingresses.delete(&format!("app-{i}"), &DeleteParams::default()).await.unwrap();
    }
    eventually(&format!("every Ingress is released (log: {})", bed.log.display()), Duration::from_secs(120), || async {
        ingresses.list(&Default::default()).await.unwrap().items.is_empty().then_some(())
    })
    .await;
    let reads = successful_calls(&bed, "DescribeLoadBalancers").await - reads_before;
    eprintln!("{N} stacks deleted together: {reads} fresh reads of AWS");
    assert!(reads >= 1 && reads <= N as u64 / 2, "{reads} fresh reads for {N} stacks deleted together");
    assert_eq!(bed.cluster_resources().await, Vec::<String>::new(), "nothing tagged with the cluster remains");
}
