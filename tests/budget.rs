//! The AWS call budget (src/aws/budget.rs) on the real bed: with a tight ELBv2 write
//! bucket, the calls that reach AWS (as the fault proxy in front of LocalStack saw them
//! arrive) never outrun the bucket in any window, every Ingress still converges, and the
//! metrics show the waits and the bucket's level.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::Rule;
use support::{Bed, eventually, samples};

/// `--aws-budget-elbv2-write 2:1`.
const CAPACITY: f64 = 2.0;
const REFILL_PER_SECOND: f64 = 1.0;
const INGRESSES: usize = 3;
/// Between the controller starting a call and the proxy seeing it arrive, calls can bunch
/// up by about this much (connection set-up, scheduling on a 2-core machine).
const TRANSIT: Duration = Duration::from_millis(250);

/// The ELBv2 actions AWS lists as "Mutating" (the elbv2-write class), from the table in
/// https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html
const ELBV2_MUTATING: &[&str] = &[
    "AddListenerCertificates",
    "AddTags",
    "CreateListener",
    "CreateRule",
    "CreateTargetGroup",
    "DeleteListener",
    "DeleteLoadBalancer",
    "DeleteRule",
    "DeleteTargetGroup",
    "ModifyCapacityReservation",
    "ModifyIpPools",
    "ModifyListener",
    "ModifyListenerAttributes",
    "ModifyLoadBalancerAttributes",
    "ModifyRule",
    "ModifyTargetGroup",
    "ModifyTargetGroupAttributes",
    "RemoveListenerCertificates",
    "RemoveTags",
    "SetIpAddressType",
    "SetRulePriorities",
    "SetSecurityGroups",
];

fn app(i: usize) -> String {
    support::app_manifest(i, "alb.ingress.kubernetes.io/scheme: internet-facing")
}

fn forwards_path(rule: &Rule, path: &str) -> Option<String> {
    let matches = rule.conditions().iter().filter(|c| c.field() == Some("path-pattern")).any(|c| {
        c.path_pattern_config().map(|p| p.values().iter().any(|v| v == path)).unwrap_or(false) || c.values().iter().any(|v| v == path)
    });
    let action = rule.actions().first()?;
    let tg = action
        .target_group_arn()
        .map(str::to_string)
        .or_else(|| action.forward_config()?.target_groups().first()?.target_group_arn().map(str::to_string));
    if matches { tg } else { None }
}

/// Whether app-`i` is served: its load balancer has a rule for its path forwarding to a
/// target group whose one target is its Ready pod.
async fn app_converged(bed: &Bed, i: usize) -> bool {
    let Some(dns) = bed.hostname(&format!("app-{i}")).await else { return false };
    let Some(lb) = bed.load_balancers().await.into_iter().find(|lb| lb.dns_name() == Some(dns.as_str())) else { return false };
    let pods = bed.ready_pod_ips(&format!("app=svc-{i}")).await;
    if pods.len() != 1 {
        return false;
    }
    let want: BTreeSet<(String, i32)> = pods.into_iter().map(|ip| (ip, 8080)).collect();
    for listener in bed.listeners(lb.load_balancer_arn().unwrap()).await {
        for rule in bed.rules(listener.listener_arn().unwrap()).await {
            if let Some(tg) = forwards_path(&rule, &format!("/app-{i}")) {
                return bed.targets(&tg).await == want;
            }
        }
    }
    false
}

/// The most calls among `arrivals` (sorted) in any window, over what the bucket allows in
/// it (capacity + refill × (window + transit)); ≤ 0 when the bucket was kept.
fn worst_excess(arrivals: &[Instant]) -> (f64, usize, Duration) {
    let mut worst = (f64::MIN, 0, Duration::ZERO);
    for i in 0..arrivals.len() {
        for j in i..arrivals.len() {
            let window = arrivals[j] - arrivals[i];
            let calls = j - i + 1;
            let excess = calls as f64 - (CAPACITY + REFILL_PER_SECOND * (window + TRANSIT).as_secs_f64());
            if excess > worst.0 {
                worst = (excess, calls, window);
            }
        }
    }
    worst
}

fn metric(text: &str, name: &str, class: &str) -> Option<f64> {
    samples(text, name).into_iter().find(|(labels, _)| labels.get("class").map(String::as_str) == Some(class)).map(|(_, v)| v)
}

#[tokio::test]
async fn a_tight_write_budget_is_kept_in_every_window_and_everything_still_converges() {
    let bed = Bed::start_with_faults("budget", &["--aws-budget-elbv2-write", "2:1"]).await;
    let start = Instant::now();
    for i in 0..INGRESSES {
        bed.apply(&app(i)).await;
    }
    let pending = std::cell::RefCell::new((0..INGRESSES).collect::<BTreeSet<usize>>());
    eventually(&format!("every Ingress converges within the budget (log: {})", bed.log.display()), Duration::from_secs(300), || async {
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

    let mut writes: Vec<Instant> = ELBV2_MUTATING.iter().flat_map(|op| bed.faults().arrivals(op)).collect();
    writes.sort();
    // Enough writes that a bucket of 2 had to hold some back.
    assert!(writes.len() as f64 > CAPACITY + 3.0, "only {} ELBv2 writes", writes.len());
    let (excess, calls, window) = worst_excess(&writes);
    eprintln!(
        "{INGRESSES} Ingresses converged in {:.1}s with {} ELBv2 writes at 2:1; the fullest window held {calls} writes in {:.2}s",
        converged.as_secs_f64(),
        writes.len(),
        window.as_secs_f64()
    );
    assert!(excess <= 0.0, "{calls} ELBv2 writes arrived within {window:?}: more than a 2:1 bucket allows");
    // Spread out as the bucket refills: the writes past its capacity took about 1 s each.
    let span = *writes.last().unwrap() - writes[0];
    assert!(
        span.as_secs_f64() + TRANSIT.as_secs_f64() >= (writes.len() as f64 - CAPACITY) / REFILL_PER_SECOND,
        "{} writes within {span:?}",
        writes.len()
    );

    let metrics = bed.metrics().await;
    let waits = metric(&metrics, "alb_controller_aws_budget_waits_total", "elbv2-write").unwrap_or(0.0);
    let waited = metric(&metrics, "alb_controller_aws_budget_wait_seconds_total", "elbv2-write").unwrap_or(0.0);
    assert!(waits > 0.0 && waited > 0.0, "waits {waits}, {waited} s:\n{metrics}");
    let tokens = metric(&metrics, "alb_controller_aws_budget_tokens", "elbv2-write").expect("the bucket's level is shown");
    assert!(tokens <= CAPACITY, "{tokens} tokens in a bucket of {CAPACITY}");
    assert!(metric(&metrics, "alb_controller_aws_budget_tokens", "elbv2-describe").is_some(), "every bucket is shown:\n{metrics}");
}
