//! LBC's annotation spellings on the real bed: `conditions.*` and `actions.*` JSON with
//! LBC's keys (`sourceIPConfig`, `targetGroupARN`) and other casings Go accepts, a key
//! nobody knows (accepted, with a Warning naming it), and target group tags merged from
//! the Ingress's and the Service's `tags` (the Service wins a key), read back through the
//! ELBv2 and Kubernetes APIs.

mod support;

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::Rule;
use support::{Bed, eventually};

const APP: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    alb.ingress.kubernetes.io/tags: team=web-svc, svc=web
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/tags: team=shop, env=prod
    alb.ingress.kubernetes.io/conditions.web: >
      [{"field":"source-ip","sourceIPConfig":{"values":["10.0.0.0/8"]},"note":"office only"},
       {"Field":"http-header","HTTPHeaderConfig":{"httpHeaderName":"X-Env","Values":["canary"]}}]
    alb.ingress.kubernetes.io/actions.gone: >
      {"Type":"fixed-response","fixedResponseConfig":{"StatusCode":"410","contentType":"text/plain"}}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /old, pathType: Exact, backend: {service: {name: gone, port: {name: use-annotation}}}}
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

/// The rule whose conditions include this path.
fn rule_with_path<'a>(rules: &'a [Rule], path: &str) -> Option<&'a Rule> {
    rules.iter().find(|r| r.conditions().iter().any(|c| c.path_pattern_config().is_some_and(|p| p.values().iter().any(|v| v == path))))
}

#[tokio::test]
async fn lbc_json_spellings_and_service_tags_reach_aws() {
    let bed = Bed::start("lbc-annotations").await;
    bed.apply(APP).await;
    bed.apply(support::WEB_DEPLOYMENT).await;
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let lb_arn = lb.load_balancer_arn().unwrap().to_string();
    let listener = bed.listeners(&lb_arn).await.into_iter().find(|l| l.port() == Some(80)).expect("HTTP:80 listener");
    let listener_arn = listener.listener_arn().unwrap().to_string();

    // The catch-all rule carries the conditions.web annotation, read with LBC's keys.
    let rules = eventually(&format!("both rules exist (log: {})", bed.log.display()), Duration::from_secs(60), || async {
        let rules = bed.rules(&listener_arn).await;
        (rule_with_path(&rules, "/*").is_some() && rule_with_path(&rules, "/old").is_some()).then_some(rules)
    })
    .await;
    let web = rule_with_path(&rules, "/*").unwrap();
    let source: Vec<&str> = web
        .conditions()
        .iter()
        .filter(|c| c.field() == Some("source-ip"))
        .flat_map(|c| c.source_ip_config().map(|s| s.values()).unwrap_or_default())
        .map(String::as_str)
        .collect();
    assert_eq!(source, ["10.0.0.0/8"], "{:?}", web.conditions());
    let header = web.conditions().iter().find(|c| c.field() == Some("http-header")).and_then(|c| c.http_header_config());
    assert_eq!(header.and_then(|h| h.http_header_name()), Some("X-Env"), "{:?}", web.conditions());
    assert_eq!(header.map(|h| h.values().to_vec()), Some(vec!["canary".to_string()]));
    let old = rule_with_path(&rules, "/old").unwrap();
    let fixed = old.actions().iter().find_map(|a| a.fixed_response_config()).expect("a fixed-response action");
    assert_eq!(fixed.status_code(), Some("410"));

    // The key nobody knows is accepted and named in a Warning.
    let warning = bed.wait_warning("shop", "conditions.web").await;
    assert!(warning.contains(r#"unknown key "[0].note" is ignored"#), "{warning}");

    // Target group: the Ingress's tags with the Service's over them, key by key.
    let forward =
        web.actions().iter().find_map(|a| a.target_group_arn().map(str::to_string)).or_else(|| {
            web.actions().iter().find_map(|a| a.forward_config()?.target_groups().first()?.target_group_arn().map(str::to_string))
        });
    let tg_arn = forward.expect("the catch-all rule forwards to a target group");
    let tg_tags = bed.tags(&tg_arn).await;
    assert_eq!(tg_tags.get("team").map(String::as_str), Some("web-svc"), "{tg_tags:?}");
    assert_eq!(tg_tags.get("svc").map(String::as_str), Some("web"), "{tg_tags:?}");
    assert_eq!(tg_tags.get("env").map(String::as_str), Some("prod"), "{tg_tags:?}");
    assert_eq!(tg_tags.get("elbv2.k8s.aws/cluster"), Some(&bed.cluster), "{tg_tags:?}");
    // The load balancer keeps the Ingress's own tags; a Service's tags are its target group's only.
    let lb_tags = bed.tags(&lb_arn).await;
    assert_eq!(lb_tags.get("team").map(String::as_str), Some("shop"), "{lb_tags:?}");
    assert!(!lb_tags.contains_key("svc"), "{lb_tags:?}");
}
