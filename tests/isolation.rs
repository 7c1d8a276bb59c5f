//! Issue 10, defects 5-7 on the real bed: a bad member never blocks its group-mates (what
//! the model can know is checked before AWS; what AWS still refuses stays with the member
//! whose rule it is), a refused reordering still converges, and converged Ingresses cost
//! read calls only after a restart and on every drift-check round.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Patch, PatchParams};
use support::{Bed, WEB, eventually, is_mutating};

/// A member of group `shop` with one Exact path (and a host, when given).
fn member(name: &str, host: Option<&str>, path: &str, extra_annotations: &str) -> String {
    let host = host.map(|h| format!("\n  - host: {h}\n    http:")).unwrap_or_else(|| "\n  - http:".into());
    format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  annotations: {{alb.ingress.kubernetes.io/group.name: shop{extra_annotations}}}
spec:
  ingressClassName: alb
  rules:{host}
      paths:
      - {{path: {path}, pathType: Exact, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"#
    )
}

/// The HTTP:80 listener of the load balancer `ingress` has as its hostname.
async fn http_listener(bed: &Bed, ingress: &str) -> String {
    let dns = bed.wait_hostname(ingress).await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let listeners = bed.listeners(lb.load_balancer_arn().unwrap()).await;
    listeners.iter().find(|l| l.port() == Some(80)).and_then(|l| l.listener_arn()).expect("HTTP:80 listener").to_string()
}

#[tokio::test]
async fn an_unresolvable_subnet_stays_with_the_member_that_names_it() {
    let bed = Bed::start_from_env("iso-subnets").await;
    bed.apply(WEB).await;
    bed.apply(&member("bad", None, "/bad", ", alb.ingress.kubernetes.io/subnets: subnet-doesnotexist")).await;
    bed.apply(&member("good", None, "/good", "")).await;
    let warning = bed.wait_warning("bad", "subnet-doesnotexist").await;
    assert!(warning.contains("alb.ingress.kubernetes.io/subnets"), "{warning}");
    let listener = http_listener(&bed, "good").await;
    bed.wait_paths(&listener, &["/good"]).await;
    // A member joining later converges too.
    bed.apply(&member("later", None, "/later", "")).await;
    bed.wait_paths(&listener, &["/good", "/later"]).await;
    assert_eq!(bed.wait_hostname("later").await, bed.wait_hostname("good").await);
    for healthy in ["good", "later"] {
        let warnings = bed.warnings(healthy).await;
        assert!(!warnings.iter().any(|w| w.contains("subnet")), "{healthy} is not told of bad's subnets: {warnings:?}");
    }
    assert_eq!(bed.hostname("bad").await, None);
}

#[tokio::test]
async fn rules_aws_would_refuse_stay_with_their_members() {
    let bed = Bed::start_from_env("iso-limits").await;
    bed.apply(WEB).await;
    bed.apply(&member("good", None, "/good", "")).await;
    let listener = http_listener(&bed, "good").await;
    bed.wait_paths(&listener, &["/good"]).await;
    // Valid for Kubernetes (DNS labels of at most 63, 141 in all), over AWS's 128.
    let long_host = format!("{}.{}.example.com", "a".repeat(63), "b".repeat(63));
    bed.apply(&member("long-host", Some(&long_host), "/host", "")).await;
    let long_path = format!("/{}", "p".repeat(130));
    bed.apply(&member("long-path", None, &long_path, "")).await;
    // A healthy member created after them still gets its rule and hostname.
    bed.apply(&member("later", None, "/later", "")).await;
    bed.wait_paths(&listener, &["/good", "/later"]).await;
    assert_eq!(bed.wait_hostname("later").await, bed.wait_hostname("good").await);
    for bad in ["long-host", "long-path"] {
        let warning = bed.wait_warning(bad, "1-128").await;
        assert!(warning.len() < 1024, "{warning}");
        assert_eq!(bed.hostname(bad).await, None);
    }
    for healthy in ["good", "later"] {
        let warnings = bed.warnings(healthy).await;
        assert!(
            !warnings.iter().any(|w| w.contains("1-128") || w.contains("rule for")),
            "{healthy} is not told of the others: {warnings:?}"
        );
    }
}

#[tokio::test]
async fn a_rule_aws_refuses_leaves_its_member_out_and_the_group_converges() {
    let bed = Bed::start_from_env("iso-refused").await;
    bed.apply(WEB).await;
    bed.apply(&member("good", None, "/good", "")).await;
    let listener = http_listener(&bed, "good").await;
    bed.wait_paths(&listener, &["/good"]).await;
    // A refusal the model cannot foresee: a forward to a target group ARN (made outside
    // Kubernetes) that does not exist in the account. The ARN is well formed, so only AWS
    // can tell; CreateRule answers TargetGroupNotFound, as real AWS does.
    let missing = format!("arn:aws:elasticloadbalancing:us-east-1:{}:targetgroup/deleted/0123456789abcdef", bed.account);
    let refused = format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: refused
  annotations:
    alb.ingress.kubernetes.io/group.name: shop
    alb.ingress.kubernetes.io/actions.old: '{{"type":"forward","targetGroupARN":"{missing}"}}'
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /old, pathType: Exact, backend: {{service: {{name: old, port: {{name: use-annotation}}}}}}}}
"#
    );
    bed.apply(&refused).await;
    bed.wait_warning("refused", "TargetGroupNotFound").await;
    // A new member joins and an existing one is edited: both go through.
    bed.apply(&member("later", None, "/later", "")).await;
    let edit = serde_json::json!({"spec": {"rules": [{"http": {"paths": [{"path": "/good2", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    bed.api::<Ingress>().patch("good", &PatchParams::default(), &Patch::Merge(edit)).await.unwrap();
    bed.wait_paths(&listener, &["/good2", "/later"]).await;
    assert_eq!(bed.wait_hostname("later").await, bed.wait_hostname("good").await);
    for healthy in ["good", "later"] {
        let warnings = bed.warnings(healthy).await;
        assert!(!warnings.iter().any(|w| w.contains("TargetGroupNotFound")), "{healthy} is not told of refused's rule: {warnings:?}");
    }
    assert_eq!(bed.hostname("refused").await, None);
    // Fixed, it comes in.
    let fix = serde_json::json!({"metadata": {"annotations": {"alb.ingress.kubernetes.io/actions.old": "{\"type\":\"fixed-response\",\"fixedResponseConfig\":{\"statusCode\":\"410\"}}"}}});
    bed.api::<Ingress>().patch("refused", &PatchParams::default(), &Patch::Merge(fix)).await.unwrap();
    bed.wait_paths(&listener, &["/good2", "/later", "/old"]).await;
}

#[tokio::test]
async fn a_reordering_edit_converges_when_the_swap_is_refused() {
    // Today's emulator applies SetRulePriorities pair by pair and answers PriorityInUse to
    // a swap (AWS applies it as a whole); the controller must converge either way.
    let bed = Bed::start_from_env("iso-reorder").await;
    bed.apply(WEB).await;
    let ingress = |b: &str| {
        format!(
            r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: shop}}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /a, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
      - {{path: {b}, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"#
        )
    };
    bed.apply(&ingress("/b")).await;
    let listener = http_listener(&bed, "shop").await;
    bed.wait_paths(&listener, &["/a,/a/*", "/b,/b/*"]).await;
    // Longer now, so first: the rule of /a moves to 2 and that of /b to 1, a swap.
    let edit = serde_json::json!({"spec": {"rules": [{"http": {"paths": [
        {"path": "/a", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "/b-longer", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::Merge(edit)).await.unwrap();
    bed.wait_paths(&listener, &["/b-longer,/b-longer/*", "/a,/a/*"]).await;
    // And a later edit of the same Ingress is not held back by it.
    let edit = serde_json::json!({"spec": {"rules": [{"http": {"paths": [
        {"path": "/a", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "/c", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "/b-longer", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::Merge(edit)).await.unwrap();
    bed.wait_paths(&listener, &["/c", "/b-longer,/b-longer/*", "/a,/a/*"]).await;
}

/// Mutating AWS calls in `after` that `before` did not have, by operation.
fn new_writes(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(op, _)| is_mutating(op))
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Waits until the controller has read the listeners of `load_balancers` from AWS
/// `rounds` times more than in `before` (drift rounds, or the reads after a restart). A
/// write a round makes comes right after its reads, so by the last round's reads every
/// earlier round's writes are counted.
async fn wait_rounds(bed: &Bed, before: &BTreeMap<String, u64>, load_balancers: u64, rounds: u64) {
    let was = before.get("DescribeListeners").copied().unwrap_or(0);
    let want = was + load_balancers * rounds;
    eventually(&format!("{rounds} rounds of reads (log: {})", bed.log.display()), Duration::from_secs(120), || async {
        (bed.aws_calls().await.get("DescribeListeners").copied().unwrap_or(0) >= want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn converged_ingresses_cost_reads_only_after_a_restart_and_on_drift_rounds() {
    // Short enough for rounds within the test, long enough for quiet moments between them.
    let mut bed = Bed::start_from_env_with_args("iso-drift", &["--drift-check-interval", "6s"]).await;
    bed.apply(WEB).await;
    let cert = bed.seed["certificate_arn"].as_str().unwrap().to_string();
    bed.apply(&format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: canary}}
spec:
  ports: [{{name: http, port: 80, targetPort: 9090}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: plain}}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: secure
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{{"HTTP": 80}}, {{"HTTPS": 443}}]'
    alb.ingress.kubernetes.io/ssl-redirect: '443'
    alb.ingress.kubernetes.io/certificate-arn: {cert}
spec:
  ingressClassName: alb
  rules:
  - host: shop.example.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: weighted
  annotations:
    alb.ingress.kubernetes.io/actions.split: >
      {{"type":"forward","forwardConfig":{{"targetGroups":[{{"serviceName":"web","servicePort":80,"weight":90}},{{"serviceName":"canary","servicePort":"http","weight":10}}],"targetGroupStickinessConfig":{{"enabled":true,"durationSeconds":300}}}}}}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /split, pathType: Exact, backend: {{service: {{name: split, port: {{name: use-annotation}}}}}}}}
"#
    ))
    .await;
    bed.apply(&member("one", None, "/one", "")).await;
    bed.apply(&member("two", Some("two.example.com"), "/two", "")).await;
    for ingress in ["plain", "secure", "weighted", "one", "two"] {
        bed.wait_hostname(ingress).await;
    }
    bed.wait_quiet().await;
    // Four load balancers: plain, secure, weighted and the group shop.
    let load_balancers = 4;

    // Drift-check rounds: every listener, rule and target group is read again, nothing
    // is written.
    let converged = bed.aws_calls().await;
    wait_rounds(&bed, &converged, load_balancers, 3).await;
    let writes = new_writes(&converged, &bed.aws_calls().await);
    assert!(writes.is_empty(), "drift rounds over converged Ingresses wrote to AWS: {writes:?} (log: {})", bed.log.display());

    // A restart reads everything back (and a drift round follows), writing nothing.
    bed.restart_controller("restarted").await;
    wait_rounds(&bed, &BTreeMap::new(), load_balancers, 2).await;
    let calls = bed.aws_calls().await;
    let writes = new_writes(&BTreeMap::new(), &calls);
    assert!(writes.is_empty(), "a restart over converged Ingresses wrote to AWS: {writes:?} (log: {})", bed.log.display());
}
