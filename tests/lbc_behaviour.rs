//! LBC's answers where an Ingress is incomplete or odd, on the real bed: missing backends
//! (fixed 503s with LBC's bodies), rules an earlier rule shadows (kept, with a Warning),
//! and the status LBC v3 writes (hostname and every listener port).

mod support;

use std::process::Command;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{Action, Rule};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ListParams, Patch, PatchParams};
use support::{Bed, WEB, eventually};

/// The HTTP:80 listener's rules of the Ingress's load balancer, once it has `count`.
async fn rules_of(bed: &Bed, ingress: &str, port: i32, count: usize) -> Vec<Rule> {
    let dns = bed.wait_hostname(ingress).await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let listener = bed.listeners(lb.load_balancer_arn().unwrap()).await.into_iter().find(|l| l.port() == Some(port)).expect("listener");
    let arn = listener.listener_arn().unwrap().to_string();
    eventually(&format!("{count} rules on port {port} (log: {})", bed.log.display()), Duration::from_secs(60), || async {
        let rules = bed.rules(&arn).await;
        (rules.len() == count).then_some(rules)
    })
    .await
}

/// The rule whose path-pattern values include `path`.
fn rule_for<'r>(rules: &'r [Rule], path: &str) -> &'r Rule {
    rules
        .iter()
        .find(|r| {
            r.conditions().iter().filter_map(|c| c.path_pattern_config()).any(|p| p.values().iter().any(|v| v == path))
                || r.conditions().iter().filter(|c| c.field() == Some("path-pattern")).any(|c| c.values().iter().any(|v| v == path))
        })
        .unwrap_or_else(|| panic!("no rule for path {path}"))
}

/// (status code, content type, body) of a fixed-response action.
fn fixed(action: &Action) -> (Option<&str>, Option<&str>, Option<&str>) {
    let f = action.fixed_response_config().unwrap_or_else(|| panic!("not a fixed response: {action:?}"));
    (f.status_code(), f.content_type(), f.message_body())
}

/// Warning Events on an Ingress as (reason, message).
async fn warning_events(bed: &Bed, ingress: &str) -> Vec<(String, String)> {
    let lp = ListParams::default().fields(&format!("involvedObject.name={ingress}"));
    let events = bed.api::<Event>().list(&lp).await.unwrap();
    events
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

async fn wait_event(bed: &Bed, ingress: &str, reason: &str, needles: &[&str]) -> String {
    eventually(
        &format!("a {reason} Warning on {ingress} with {needles:?} (log: {})", bed.log.display()),
        Duration::from_secs(60),
        || async {
            warning_events(bed, ingress)
                .await
                .into_iter()
                .find(|(r, m)| r == reason && needles.iter().all(|n| m.contains(n)))
                .map(|(_, m)| m)
        },
    )
    .await
}

#[tokio::test]
async fn status_lists_every_listener_port_and_a_resync_does_not_write_it() {
    let bed = Bed::start("status-ports").await;
    bed.apply(WEB).await;
    let cert = bed.seed["certificate_arn"].as_str().unwrap().to_string();
    bed.apply(&format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{{"HTTPS": 443}}, {{"HTTP": 80}}]'
    alb.ingress.kubernetes.io/certificate-arn: {cert}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"#
    ))
    .await;
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let mut ports: Vec<i32> = bed.listeners(lb.load_balancer_arn().unwrap()).await.iter().filter_map(|l| l.port()).collect();
    ports.sort();
    assert_eq!(ports, vec![80, 443], "the ALB's listeners");

    let ingresses = bed.api::<Ingress>();
    let status = eventually("the status lists the ports", Duration::from_secs(60), || async {
        let ing = ingresses.get("shop").await.unwrap();
        let lb = ing.status?.load_balancer?.ingress?;
        lb.first()?.ports.is_some().then_some(lb)
    })
    .await;
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].hostname.as_deref(), Some(dns.as_str()));
    let listed: Vec<(i32, &str)> = status[0].ports.iter().flatten().map(|p| (p.port, p.protocol.as_str())).collect();
    assert_eq!(listed, vec![(80, "TCP"), (443, "TCP")], "sorted, as LBC writes them");

    // A change that does not touch the ALB is reconciled without a status write: the
    // resourceVersion stays the one our label patch made.
    bed.wait_quiet().await;
    let before = bed.reconciles().await;
    let patched = ingresses
        .patch("shop", &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"labels": {"touched": "yes"}}})))
        .await
        .unwrap();
    eventually("the label change is reconciled", Duration::from_secs(60), || async { (bed.reconciles().await > before).then_some(()) })
        .await;
    bed.wait_quiet().await;
    let after = ingresses.get("shop").await.unwrap();
    assert_eq!(after.metadata.resource_version, patched.metadata.resource_version, "a resync wrote the status again");
}

#[tokio::test]
async fn missing_backends_answer_lbcs_503_while_the_other_rules_forward() {
    let bed = Bed::start("missing-backends").await;
    bed.apply(WEB).await;
    bed.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /promo, pathType: Exact, backend: {service: {name: promo, port: {name: use-annotation}}}}
      - {path: /gone, pathType: Exact, backend: {service: {name: gone, port: {number: 80}}}}
      - {path: /web, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
"#,
    )
    .await;
    let rules = rules_of(&bed, "shop", 80, 3).await;
    assert_eq!(fixed(&rule_for(&rules, "/promo").actions()[0]), (Some("503"), Some("text/plain"), Some("Backend action does not exist")));
    assert_eq!(fixed(&rule_for(&rules, "/gone").actions()[0]), (Some("503"), Some("text/plain"), Some("Backend service does not exist")));
    let web = rule_for(&rules, "/web").actions()[0].target_group_arn().expect("/web forwards").to_string();
    let pod = bed.wait_pod_targets("app=web", 1, 8080).await;
    eventually("the other rule works: the web pod is its target", Duration::from_secs(30), || async {
        (bed.targets(&web).await == pod).then_some(())
    })
    .await;
    // Two Warnings of one reason on one Ingress: both must show (kube's Recorder alone
    // would fold the second into the first's series).
    wait_event(&bed, "shop", "FailedBuildModel", &["alb.ingress.kubernetes.io/actions.promo", "Backend action does not exist"]).await;
    wait_event(&bed, "shop", "FailedBuildModel", &["Service", "/gone not found", "Backend service does not exist"]).await;

    // Once the Service exists, its rule forwards to it.
    bed.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: gone}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
"#,
    )
    .await;
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let listener = bed.listeners(lb.load_balancer_arn().unwrap()).await.remove(0);
    eventually("the /gone rule forwards once its Service exists", Duration::from_secs(60), || async {
        let rules = bed.rules(listener.listener_arn().unwrap()).await;
        rule_for(&rules, "/gone").actions()[0].target_group_arn().map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_missing_service_fails_the_ingress_when_not_tolerated() {
    let bed = Bed::start_with_args("strict-backends", &["--tolerate-non-existent-backend-service=false"]).await;
    bed.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /gone, pathType: Exact, backend: {service: {name: gone, port: {number: 80}}}}
"#,
    )
    .await;
    let message = wait_event(&bed, "shop", "FailedBuildModel", &["/gone not found"]).await;
    assert!(!message.contains("503"), "{message}");
    // The build failed before AWS was called: nothing was made for it.
    assert!(bed.load_balancers().await.is_empty());
    assert_eq!(bed.hostname("shop").await, None);
}

#[tokio::test]
async fn a_rule_after_a_catch_all_is_kept_in_aws_with_a_warning() {
    let bed = Bed::start("shadowed").await;
    bed.apply(WEB).await;
    bed.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
  - http:
      paths:
      - {path: /late, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
"#,
    )
    .await;
    let rules = rules_of(&bed, "shop", 80, 2).await;
    assert_eq!(rules[0].priority(), Some("1"));
    assert!(rule_for(&rules, "/*").actions()[0].target_group_arn().is_some());
    let late = rule_for(&rules, "/late");
    assert_eq!(late.priority(), Some("2"), "kept after the catch-all");
    assert!(late.actions()[0].target_group_arn().is_some());
    let message = wait_event(&bed, "shop", "UnreachableRule", &[r#"path "/late""#, r#"rule 1 of the listener, for path "/""#]).await;
    assert!(message.contains("port 80"), "{message}");
}

/// `plan` takes the controller's two tolerate flags (no bed needed).
#[test]
fn plan_fails_missing_backends_when_not_tolerated() {
    let root = env!("CARGO_MANIFEST_DIR");
    let plan = |fixture: &str, flag: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_alb-controller"))
            .current_dir(root)
            .args(["plan", "-f", fixture, "--env", "tests/fixtures/env.yaml", "--cluster-name", "snap", flag])
            .output()
            .unwrap();
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, out) = plan("tests/fixtures/missing-action.yaml", "--tolerate-non-existent-backend-action=false");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("No load balancers."), "{out}");
    assert!(
        out.contains(r#"Warning  FailedBuildModel  default/noaction: backend "promo" uses annotation alb.ingress.kubernetes.io/actions.promo, which is not set"#)
            && !out.contains("503"),
        "{out}"
    );
    let (code, out) = plan("tests/fixtures/missing-service.yaml", "--tolerate-non-existent-backend-service=false");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Warning  FailedBuildModel  default/missing: backend Service default/nope not found\n"), "{out}");
    // The other flag does not change how a missing Service is answered.
    let (_, out) = plan("tests/fixtures/missing-service.yaml", "--tolerate-non-existent-backend-action=false");
    assert!(out.contains("-> fixed-response 503"), "{out}");
}

/// Bad annotation values of 100 kB (the issue saw 270 MB of log in 50 s for 39 of them):
/// the log quotes bounded excerpts and does not repeat an unchanged error at retry speed,
/// and every such Ingress still gets its Warning.
#[tokio::test]
async fn bad_100_kb_annotation_values_keep_the_log_small_and_each_ingress_gets_a_warning() {
    /// How long the controller is watched after every Warning is there.
    const WATCHED: Duration = Duration::from_secs(20);
    /// The controller's whole log stays under this.
    const LOG_BOUND: u64 = 200 * 1024;
    let bed = Bed::start("log-bound").await;
    bed.apply(WEB).await;
    let big = "x".repeat(100 * 1024);
    let bad = [
        ("scheme", big.clone()),
        ("tags", format!("team={big}")),
        ("healthcheck-path", format!("/{big}")),
        ("security-groups", big.clone()),
    ];
    for (i, (key, value)) in bad.iter().enumerate() {
        let ing: Ingress = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("bad-{i}"), "namespace": bed.ns,
                         "annotations": {format!("alb.ingress.kubernetes.io/{key}"): value}},
            "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
        }))
        .unwrap();
        bed.api::<Ingress>().create(&Default::default(), &ing).await.unwrap();
    }
    for i in 0..bad.len() {
        let name = format!("bad-{i}");
        eventually(&format!("a Warning Event on {name} (log: {})", bed.log.display()), Duration::from_secs(60), || async {
            (!bed.warnings(&name).await.is_empty()).then_some(())
        })
        .await;
    }
    let log_size = || std::fs::metadata(&bed.log).map(|m| m.len()).unwrap_or(0);
    let watching = std::time::Instant::now();
    while watching.elapsed() < WATCHED {
        assert!(log_size() < LOG_BOUND, "the log has {} bytes after {:?} ({})", log_size(), watching.elapsed(), bed.log.display());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(log_size() < LOG_BOUND, "the log has {} bytes ({})", log_size(), bed.log.display());
}
