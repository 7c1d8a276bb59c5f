//! LBC compatibility on the real bed: IngressGroups, HTTPS with discovered certificates,
//! failure isolation inside a group.

mod support;

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::Rule;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use support::{Bed, WEB, eventually};

fn member(name: &str, order: i32, path: &str) -> String {
    format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  annotations: {{alb.ingress.kubernetes.io/group.name: shop, alb.ingress.kubernetes.io/group.order: '{order}'}}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: {path}, pathType: Exact, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
"#
    )
}

/// The group's one load balancer and its HTTP:80 listener's rules, once every named
/// member shows the same hostname.
async fn group_rules(bed: &Bed, members: &[&str]) -> (String, String, Vec<Rule>) {
    let mut dns = Vec::new();
    for m in members {
        dns.push(bed.wait_hostname(m).await);
    }
    assert!(dns.iter().all(|d| d == &dns[0]), "one ALB for the whole group: {dns:?}");
    let lb = bed.load_balancer_by_dns(&dns[0]).await;
    let lb_arn = lb.load_balancer_arn().unwrap().to_string();
    let listener = bed.listeners(&lb_arn).await.into_iter().find(|l| l.port() == Some(80)).expect("HTTP:80 listener");
    let listener_arn = listener.listener_arn().unwrap().to_string();
    let rules = bed.rules(&listener_arn).await;
    (lb_arn, listener_arn, rules)
}

#[tokio::test]
async fn a_group_of_three_is_one_alb_with_rules_in_group_order() {
    let bed = Bed::start("group").await;
    bed.apply(WEB).await;
    for (name, order, path) in [("a", 10, "/a"), ("b", 0, "/b"), ("c", -1, "/c")] {
        bed.apply(&member(name, order, path)).await;
    }
    let (lb_arn, listener, _) = group_rules(&bed, &["a", "b", "c"]).await;
    bed.wait_paths(&listener, &["/c", "/b", "/a"]).await;
    let tags = bed.tags(&lb_arn).await;
    assert_eq!(tags["ingress.k8s.aws/stack"], "shop");
    assert!(bed.load_balancers().await.len() == 1);

    // Deleting one member removes its rule and its target group (one per Ingress and
    // Service port, as LBC); the ALB and the others stay.
    bed.api::<Ingress>().delete("b", &DeleteParams::default()).await.unwrap();
    bed.wait_paths(&listener, &["/c", "/a"]).await;
    eventually("b is gone", Duration::from_secs(30), || async { bed.api::<Ingress>().get_opt("b").await.unwrap().is_none().then_some(()) })
        .await;
    eventually("b's target group is deleted", Duration::from_secs(30), || async {
        (bed.stack_arns("shop").await.len() == 3).then_some(())
    })
    .await;
    let (lb_after, _, _) = group_rules(&bed, &["a", "c"]).await;
    assert_eq!(lb_after, lb_arn, "the load balancer is kept");

    // Moving a member to its own group moves its rules out.
    let leave = serde_json::json!({"metadata": {"annotations": {"alb.ingress.kubernetes.io/group.name": null}}});
    bed.api::<Ingress>().patch("a", &PatchParams::default(), &Patch::Merge(leave)).await.unwrap();
    bed.wait_paths(&listener, &["/c"]).await;
    let own = eventually("a gets its own ALB", Duration::from_secs(60), || async {
        let h = bed.hostname("a").await?;
        (bed.load_balancer_by_dns(&h).await.load_balancer_arn() != Some(lb_arn.as_str())).then_some(h)
    })
    .await;
    assert!(
        own.starts_with(&format!("k8s-{}-a-", bed.ns.chars().filter(char::is_ascii_alphanumeric).take(8).collect::<String>())),
        "{own}"
    );
}

#[tokio::test]
async fn an_invalid_member_keeps_its_rules_while_the_group_converges() {
    let bed = Bed::start("isolate-group").await;
    bed.apply(WEB).await;
    bed.apply(&member("a", 1, "/a")).await;
    bed.apply(&member("b", 2, "/b")).await;
    let (_, listener, _) = group_rules(&bed, &["a", "b"]).await;
    bed.wait_paths(&listener, &["/a", "/b"]).await;

    // a turns invalid: a Warning names the annotation; a's last good rule stays.
    let bad = serde_json::json!({"metadata": {"annotations": {"alb.ingress.kubernetes.io/healthcheck-interval-seconds": "often"}},
        "spec": {"rules": [{"http": {"paths": [{"path": "/a-new", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    bed.api::<Ingress>().patch("a", &PatchParams::default(), &Patch::Merge(bad)).await.unwrap();
    bed.wait_warning("a", "alb.ingress.kubernetes.io/healthcheck-interval-seconds").await;

    // The group still converges around it: a new member and an edit of b go through.
    bed.apply(&member("c", 3, "/c")).await;
    let edit = serde_json::json!({"spec": {"rules": [{"http": {"paths": [{"path": "/b2", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    bed.api::<Ingress>().patch("b", &PatchParams::default(), &Patch::Merge(edit)).await.unwrap();
    bed.wait_paths(&listener, &["/a", "/b2", "/c"]).await;

    // Fixing a brings its new path in.
    let fix = serde_json::json!({"metadata": {"annotations": {"alb.ingress.kubernetes.io/healthcheck-interval-seconds": null}}});
    bed.api::<Ingress>().patch("a", &PatchParams::default(), &Patch::Merge(fix)).await.unwrap();
    bed.wait_paths(&listener, &["/a-new", "/b2", "/c"]).await;

    // Deleting is never blocked by invalid configuration.
    bed.api::<Ingress>()
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"alb.ingress.kubernetes.io/scheme": "bogus"}}})),
        )
        .await
        .unwrap();
    bed.api::<Ingress>().delete("c", &DeleteParams::default()).await.unwrap();
    eventually("c is gone", Duration::from_secs(30), || async { bed.api::<Ingress>().get_opt("c").await.unwrap().is_none().then_some(()) })
        .await;
    bed.wait_paths(&listener, &["/a-new", "/b2"]).await;
}

#[tokio::test]
async fn https_with_a_discovered_certificate_and_ssl_redirect() {
    let bed = Bed::start("https").await;
    bed.apply(WEB).await;
    bed.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
    alb.ingress.kubernetes.io/listen-ports: '[{"HTTP": 80}, {"HTTPS": 443}]'
    alb.ingress.kubernetes.io/ssl-redirect: '443'
spec:
  ingressClassName: alb
  tls: [{hosts: [shop.example.com]}]
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    )
    .await;
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    assert_eq!(lb.scheme().unwrap().as_str(), "internet-facing");
    let listeners = bed.listeners(lb.load_balancer_arn().unwrap()).await;
    let https = listeners.iter().find(|l| l.port() == Some(443)).expect("HTTPS:443");
    assert_eq!(https.protocol().unwrap().as_str(), "HTTPS");
    let cert = bed.seed["certificate_arn"].as_str().unwrap();
    assert_eq!(https.certificates().first().and_then(|c| c.certificate_arn()), Some(cert), "the seeded *.example.com certificate");
    assert_eq!(bed.rules(https.listener_arn().unwrap()).await.len(), 1);
    let http = listeners.iter().find(|l| l.port() == Some(80)).expect("HTTP:80");
    let redirect = http.default_actions()[0].redirect_config().expect("HTTP redirects");
    assert_eq!((redirect.protocol(), redirect.port()), (Some("HTTPS"), Some("443")));
    assert!(bed.rules(http.listener_arn().unwrap()).await.is_empty());
}

#[tokio::test]
async fn weighted_forward_actions_and_conditions() {
    let bed = Bed::start("actions").await;
    bed.apply(WEB).await;
    bed.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: canary}
spec:
  ports: [{name: http, port: 80, targetPort: 9090}]
"#,
    )
    .await;
    // A target group made outside Kubernetes, forwarded to by ARN.
    let legacy = bed
        .elbv2
        .create_target_group()
        .name("legacy")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&bed.vpc_id)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
        .send()
        .await
        .unwrap();
    let legacy_arn = legacy.target_groups()[0].target_group_arn().unwrap().to_string();
    bed.apply(&format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    alb.ingress.kubernetes.io/actions.split: >
      {{"type":"forward","forwardConfig":{{"targetGroups":[{{"serviceName":"web","servicePort":80,"weight":90}},{{"serviceName":"canary","servicePort":"http","weight":10}},{{"targetGroupARN":"{legacy_arn}","weight":0}}],"targetGroupStickinessConfig":{{"enabled":true,"durationSeconds":300}}}}}}
    alb.ingress.kubernetes.io/conditions.split: >
      [{{"field":"http-header","httpHeaderConfig":{{"httpHeaderName":"X-Canary","values":["yes"]}}}},{{"field":"query-string","queryStringConfig":{{"values":[{{"key":"beta","value":"1"}}]}}}}]
    alb.ingress.kubernetes.io/actions.gone: '{{"type":"fixed-response","fixedResponseConfig":{{"statusCode":"410","contentType":"text/plain","messageBody":"gone"}}}}'
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /split, pathType: Exact, backend: {{service: {{name: split, port: {{name: use-annotation}}}}}}}}
      - {{path: /gone, pathType: Exact, backend: {{service: {{name: gone, port: {{name: use-annotation}}}}}}}}
"#
    ))
    .await;
    let (_, _, rules) = group_rules(&bed, &["shop"]).await;
    assert_eq!(rules.len(), 2);
    let forward = rules[0].actions()[0].forward_config().expect("a weighted forward");
    let weights: Vec<(bool, Option<i32>)> =
        forward.target_groups().iter().map(|t| (t.target_group_arn() == Some(legacy_arn.as_str()), t.weight())).collect();
    assert_eq!(weights, vec![(false, Some(90)), (false, Some(10)), (true, Some(0))]);
    assert_eq!(forward.target_group_stickiness_config().and_then(|s| s.duration_seconds()), Some(300));
    let fields: Vec<&str> = rules[0].conditions().iter().filter_map(|c| c.field()).collect();
    assert!(fields.contains(&"http-header") && fields.contains(&"query-string") && fields.contains(&"path-pattern"), "{fields:?}");
    let header = rules[0].conditions().iter().find_map(|c| c.http_header_config()).unwrap();
    assert_eq!((header.http_header_name(), header.values()), (Some("X-Canary"), &["yes".to_string()][..]));
    let fixed = rules[1].actions()[0].fixed_response_config().expect("fixed response");
    assert_eq!((fixed.status_code(), fixed.message_body()), (Some("410"), Some("gone")));
}

#[tokio::test]
async fn instance_targets_follow_the_nodes() {
    let mut bed = Bed::start("instance").await;
    // The bed's two nodes are the pool `web`; a third node (a new EC2 instance of the bed's
    // account, and its Node) joins the cluster later.
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(bed.client.clone());
    let label = |k: &str, v: Option<&str>| Patch::Merge(serde_json::json!({"metadata": {"labels": {k: v}}}));
    for name in &bed.nodes {
        nodes.patch(name, &PatchParams::default(), &label("pool", Some("web"))).await.unwrap();
    }
    bed.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations: {alb.ingress.kubernetes.io/target-type: instance, alb.ingress.kubernetes.io/target-node-labels: pool=web}
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    )
    .await;
    let svc = bed.api::<k8s_openapi::api::core::v1::Service>().get("web").await.unwrap();
    let node_port = svc.spec.unwrap().ports.unwrap()[0].node_port.unwrap();
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let listener = bed.listeners(lb.load_balancer_arn().unwrap()).await.remove(0);
    let tg_arn = listener.default_actions()[0].target_group_arn().map(str::to_string).unwrap_or_else(|| {
        listener.default_actions()[0].forward_config().unwrap().target_groups()[0].target_group_arn().unwrap().to_string()
    });
    let tg = bed.target_group(&tg_arn).await;
    assert_eq!((tg.target_type().unwrap().as_str(), tg.port()), ("instance", Some(node_port)));
    // The targets the named nodes make: their EC2 instances, on the NodePort.
    let want = |bed: &Bed, names: &[&String]| {
        let nodes = bed.seed["nodes"].as_array().unwrap();
        let instance = |name: &String| nodes.iter().find(|n| n["name"] == **name).unwrap()["instance_id"].as_str().unwrap().to_string();
        names.iter().map(|name| (instance(name), node_port)).collect::<std::collections::BTreeSet<_>>()
    };
    let expected = want(&bed, &[&bed.nodes[0], &bed.nodes[1]]);
    eventually("the two web nodes are targets", Duration::from_secs(30), || async {
        (bed.targets(&tg_arn).await == expected).then_some(())
    })
    .await;

    // A new node outside the pool is no target; once labelled into it, it joins.
    bed.grow_nodes(3).await;
    let new_node = bed.nodes[2].clone();
    eventually("the new node is Ready", Duration::from_secs(30), || async {
        let node = nodes.get(&new_node).await.ok()?;
        node.status?.conditions?.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;
    bed.wait_quiet().await;
    assert_eq!(bed.targets(&tg_arn).await, expected, "a node without the label is no target");
    nodes.patch(&new_node, &PatchParams::default(), &label("pool", Some("web"))).await.unwrap();
    // A node excluded from load balancers leaves.
    let excluded = label("node.kubernetes.io/exclude-from-external-load-balancers", Some("true"));
    nodes.patch(&bed.nodes[0], &PatchParams::default(), &excluded).await.unwrap();
    let expected = want(&bed, &[&bed.nodes[1], &bed.nodes[2]]);
    eventually("targets follow the node labels", Duration::from_secs(30), || async {
        (bed.targets(&tg_arn).await == expected).then_some(())
    })
    .await;
    // A deleted node leaves. (The new one: the pod runs on one of the first two, and a
    // Node deleted under a pod leaves the pod to the garbage collector for a minute.)
    nodes.delete(&bed.nodes[2], &Default::default()).await.unwrap();
    let expected = want(&bed, &[&bed.nodes[1]]);
    eventually("a deleted node is deregistered", Duration::from_secs(30), || async {
        (bed.targets(&tg_arn).await == expected).then_some(())
    })
    .await;
}

#[tokio::test]
async fn ingress_class_params_override_annotations() {
    let bed = Bed::start("params").await;
    bed.apply(WEB).await;
    let suffix = &bed.cluster;
    let params_name = format!("params-{suffix}");
    let class_name = format!("alb-{suffix}");
    let params: kube::Api<alb_params::IngressClassParams> = kube::Api::all(bed.client.clone());
    let spec = serde_json::json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "IngressClassParams",
        "metadata": {"name": params_name},
        "spec": {
            "scheme": "internet-facing",
            "inboundCIDRs": ["10.1.0.0/16"],
            "tags": [{"key": "team", "value": "platform"}],
            "group": {"name": format!("shared-{suffix}")},
            "namespaceSelector": {"matchLabels": {"alb-allowed": "yes"}}
        }
    });
    params.create(&Default::default(), &serde_json::from_value(spec).unwrap()).await.unwrap();
    let class = serde_json::json!({
        "metadata": {"name": class_name},
        "spec": {"controller": "ingress.k8s.aws/alb", "parameters": {"apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": params_name}}
    });
    kube::Api::<k8s_openapi::api::networking::v1::IngressClass>::all(bed.client.clone())
        .create(&Default::default(), &serde_json::from_value(class).unwrap())
        .await
        .unwrap();
    bed.apply(&format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations: {{alb.ingress.kubernetes.io/scheme: internal, alb.ingress.kubernetes.io/tags: "team=shop,env=test"}}
spec:
  ingressClassName: {class_name}
  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}
"#
    ))
    .await;
    // The namespace is not selected yet: a Warning, nothing created.
    bed.wait_warning("shop", "namespaceSelector").await;
    assert_eq!(bed.hostname("shop").await, None);
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(bed.client.clone());
    let label = serde_json::json!({"metadata": {"labels": {"alb-allowed": "yes"}}});
    namespaces.patch(&bed.ns, &PatchParams::default(), &Patch::Merge(label)).await.unwrap();

    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    assert_eq!(lb.scheme().unwrap().as_str(), "internet-facing", "params win over the scheme annotation");
    let tags = bed.tags(lb.load_balancer_arn().unwrap()).await;
    assert_eq!(tags["team"], "platform", "params tags win");
    assert_eq!(tags["env"], "test", "annotation tags not in params stay");
    assert_eq!(tags["ingress.k8s.aws/stack"], format!("shared-{suffix}"), "the params group");
    // The managed group (the shared backend group is on the load balancer too).
    let sg = bed.stack_security_groups(&format!("shared-{suffix}")).await.remove(0);
    assert!(lb.security_groups().contains(&sg));
    let perms = bed.ec2.describe_security_groups().group_ids(&sg).send().await.unwrap();
    let cidrs: Vec<String> = perms.security_groups()[0]
        .ip_permissions()
        .iter()
        .flat_map(|p| p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(str::to_string)))
        .collect();
    assert_eq!(cidrs, vec!["10.1.0.0/16"]);
}

/// The CRD type, as a test sees it (the controller's own type is private to its binary).
mod alb_params {
    use kube::CustomResource;
    use serde::{Deserialize, Serialize};

    #[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
    #[kube(group = "elbv2.k8s.aws", version = "v1beta1", kind = "IngressClassParams", plural = "ingressclassparams")]
    pub struct Spec {
        #[serde(flatten)]
        pub fields: std::collections::BTreeMap<String, serde_json::Value>,
    }
}

#[tokio::test]
async fn attributes_are_reconciled_and_deletion_protection_blocks_deletion() {
    let bed = Bed::start("attrs").await;
    bed.apply(WEB).await;
    bed.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    alb.ingress.kubernetes.io/load-balancer-attributes: idle_timeout.timeout_seconds=120,deletion_protection.enabled=true
    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=30
    alb.ingress.kubernetes.io/listener-attributes.HTTP-80: routing.http.response.server.enabled=false
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    )
    .await;
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let lb_arn = lb.load_balancer_arn().unwrap().to_string();
    let attrs = |list: &[aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute]| {
        list.iter().map(|a| (a.key().unwrap().to_string(), a.value().unwrap().to_string())).collect::<std::collections::BTreeMap<_, _>>()
    };
    let lb_attrs = attrs(bed.elbv2.describe_load_balancer_attributes().load_balancer_arn(&lb_arn).send().await.unwrap().attributes());
    assert_eq!(lb_attrs["idle_timeout.timeout_seconds"], "120");
    assert_eq!(lb_attrs["deletion_protection.enabled"], "true");
    let listener = bed.listeners(&lb_arn).await.remove(0);
    let tg_arn = listener.default_actions()[0].target_group_arn().unwrap().to_string();
    let tg_attrs = bed.elbv2.describe_target_group_attributes().target_group_arn(&tg_arn).send().await.unwrap();
    assert!(tg_attrs.attributes().iter().any(|a| a.key() == Some("deregistration_delay.timeout_seconds") && a.value() == Some("30")));
    let l_attrs = bed.elbv2.describe_listener_attributes().listener_arn(listener.listener_arn().unwrap()).send().await.unwrap();
    assert!(l_attrs.attributes().iter().any(|a| a.key() == Some("routing.http.response.server.enabled") && a.value() == Some("false")));

    // Deleting the Ingress is held by deletion protection, with an Event saying what to do.
    bed.api::<Ingress>().delete("shop", &DeleteParams::default()).await.unwrap();
    bed.wait_warning("shop", "deletion protection").await;
    assert!(bed.api::<Ingress>().get_opt("shop").await.unwrap().is_some(), "the finalizer holds the Ingress");
    assert_eq!(bed.load_balancers().await.len(), 1);
    // Once protection is turned off on the load balancer, the deletion goes through.
    bed.elbv2
        .modify_load_balancer_attributes()
        .load_balancer_arn(&lb_arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
                .key("deletion_protection.enabled")
                .value("false")
                .build(),
        )
        .send()
        .await
        .unwrap();
    eventually("the Ingress is deleted", Duration::from_secs(60), || async {
        bed.api::<Ingress>().get_opt("shop").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(bed.load_balancers().await.is_empty());
}

#[tokio::test]
async fn named_security_groups_replace_the_managed_one() {
    let bed = Bed::start("sgs").await;
    bed.apply(WEB).await;
    bed.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    )
    .await;
    let dns = bed.wait_hostname("shop").await;
    let stack = format!("{}/shop", bed.ns);
    assert_eq!(bed.stack_security_groups(&stack).await.len(), 1, "the managed group");
    let custom = bed.ec2.create_security_group().group_name("edge").description("made by hand").vpc_id(&bed.vpc_id).send().await.unwrap();
    let custom_id = custom.group_id().unwrap().to_string();
    let use_it = serde_json::json!({"metadata": {"annotations": {"alb.ingress.kubernetes.io/security-groups": "edge"}}});
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::Merge(use_it)).await.unwrap();
    eventually("the load balancer uses the named group", Duration::from_secs(60), || async {
        (bed.load_balancer_by_dns(&dns).await.security_groups() == [custom_id.clone()]).then_some(())
    })
    .await;
    eventually("the managed group is deleted", Duration::from_secs(60), || async {
        bed.stack_security_groups(&stack).await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn oidc_authentication_with_the_client_secret_from_a_secret() {
    let bed = Bed::start("auth").await;
    bed.apply(WEB).await;
    let secret = serde_json::json!({"metadata": {"name": "oidc"}, "stringData": {"clientID": "my-client", "clientSecret": "my-secret"}});
    bed.api::<k8s_openapi::api::core::v1::Secret>().create(&Default::default(), &serde_json::from_value(secret).unwrap()).await.unwrap();
    let cert = bed.seed["certificate_arn"].as_str().unwrap().to_string();
    bed.apply(&format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    alb.ingress.kubernetes.io/certificate-arn: {cert}
    alb.ingress.kubernetes.io/auth-type: oidc
    alb.ingress.kubernetes.io/auth-idp-oidc: '{{"issuer":"https://idp.example.com","authorizationEndpoint":"https://idp.example.com/auth","tokenEndpoint":"https://idp.example.com/token","userInfoEndpoint":"https://idp.example.com/userinfo","secretName":"oidc"}}'
    alb.ingress.kubernetes.io/auth-scope: openid email
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
    let listener = bed.listeners(lb.load_balancer_arn().unwrap()).await.remove(0);
    assert_eq!(listener.port(), Some(443));
    let rules = bed.rules(listener.listener_arn().unwrap()).await;
    let mut actions = rules[0].actions().to_vec();
    actions.sort_by_key(|a| a.order());
    let oidc = actions[0].authenticate_oidc_config().expect("authenticate-oidc first");
    assert_eq!((oidc.client_id(), oidc.issuer(), oidc.scope()), (Some("my-client"), Some("https://idp.example.com"), Some("openid email")));
    assert!(actions[1].target_group_arn().is_some() || actions[1].forward_config().is_some(), "then forward");
}

/// An Ingress with `web:80` as its default backend.
fn web_ingress(name: &str) -> String {
    format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}}}
spec:
  ingressClassName: alb
  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}
"#
    )
}

/// Two controller processes electing a leader on a Lease of `lease`, and `web`.
async fn two_replicas(test: &str, lease: &str) -> (Bed, support::Replica) {
    let id = format!("leader-{}", rand::random_range(100_000..999_999));
    let bed = Bed::start_with_args(test, &["--leader-elect", "--leader-election-id", &id, "--leader-election-lease-duration", lease]).await;
    let replica = bed.spawn_replica("b");
    bed.apply(WEB).await;
    (bed, replica)
}

#[tokio::test]
async fn only_the_leader_writes_and_another_replica_takes_over() {
    let (mut bed, mut replica) = two_replicas("leader", "6s").await;
    bed.apply(&web_ingress("one")).await;
    let dns = bed.wait_hostname("one").await;
    let (a_calls, b_calls) = (support::aws_call_count(bed.metrics_port()).await, support::aws_call_count(replica.metrics_port).await);
    assert!((a_calls > 0) != (b_calls > 0), "exactly one replica called AWS: {a_calls} and {b_calls}");
    // Kill the leader outright (no lease release): the other takes over once the lease expires.
    let survivor_port = if a_calls > 0 {
        bed.kill_controller();
        replica.metrics_port
    } else {
        replica.kill();
        bed.metrics_port()
    };
    bed.apply(&web_ingress("two")).await;
    eventually("the surviving replica takes over and serves the new Ingress", Duration::from_secs(45), || bed.hostname("two")).await;
    assert!(support::aws_call_count(survivor_port).await > 0);
    assert_eq!(bed.load_balancers().await.len(), 2, "no duplicate load balancer");
    assert_eq!(bed.hostname("one").await.as_deref(), Some(dns.as_str()), "the first load balancer is kept");
}

#[tokio::test]
async fn sigterm_hands_the_lease_over_at_once() {
    // A lease far longer than the test waits: a takeover proves the lease was released.
    let (mut bed, mut replica) = two_replicas("handover", "120s").await;
    bed.apply(&web_ingress("one")).await;
    bed.wait_hostname("one").await;
    let a_leads = support::aws_call_count(bed.metrics_port()).await > 0;
    let leader = if a_leads { bed.controller() } else { &mut replica };
    leader.terminate();
    let status = eventually("the leader stops on SIGTERM", Duration::from_secs(30), || {
        let exited = leader.exited();
        async move { exited }
    })
    .await;
    assert!(status.success(), "a clean exit: {status}");
    bed.apply(&web_ingress("two")).await;
    eventually("the other replica leads long before the 120 s lease ends", Duration::from_secs(30), || bed.hostname("two")).await;
    let survivor_port = if a_leads { replica.metrics_port } else { bed.metrics_port() };
    assert!(support::aws_call_count(survivor_port).await > 0);
}

#[tokio::test]
async fn the_deploy_manifests_are_accepted_by_the_api_server() {
    // A bed, so that the CRD is established and kubectl is on the PATH.
    let _bed = Bed::start("deploy").await;
    let out = std::process::Command::new("kubectl")
        .args(["apply", "--dry-run=server", "-f"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/crds/ingressclassparams.yaml"))
        .arg("-f")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/manifests.yaml"))
        .output()
        .expect("kubectl from the bed's PATH");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for kind in ["serviceaccount/alb-controller", "clusterrole.rbac.authorization.k8s.io/alb-controller", "deployment.apps/alb-controller"]
    {
        assert!(text.contains(kind), "{kind} not applied: {text}");
    }
}

#[tokio::test]
async fn the_readiness_gate_is_injected_and_turns_true_when_the_target_is_healthy() {
    // A serving certificate for 127.0.0.1, signed by the bed's CA (the API server calls us).
    let dir = tempfile::tempdir().unwrap();
    let (ca_cert, ca_key) = (std::env::var("BED_K8S_CA_CERT").unwrap(), std::env::var("BED_K8S_CA_KEY").unwrap());
    let (cert, key, csr, ext) =
        (dir.path().join("tls.crt"), dir.path().join("tls.key"), dir.path().join("tls.csr"), dir.path().join("ext.cnf"));
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    let openssl =
        |args: &[&str]| assert!(std::process::Command::new("openssl").args(args).output().unwrap().status.success(), "openssl {args:?}");
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.to_str().unwrap()]);
    openssl(&["req", "-new", "-key", key.to_str().unwrap(), "-subj", "/CN=alb-controller-webhook", "-out", csr.to_str().unwrap()]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        &ca_cert,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let bed = Bed::start_with_args(
        "gates",
        &["--webhook-cert-file", cert.to_str().unwrap(), "--webhook-key-file", key.to_str().unwrap(), "--webhook-bind-address", &addr],
    )
    .await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(bed.client.clone());
    let label = serde_json::json!({"metadata": {"labels": {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}}});
    namespaces.patch(&bed.ns, &PatchParams::default(), &Patch::Merge(label)).await.unwrap();
    let ca_bundle = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, std::fs::read(&ca_cert).unwrap());
    let webhook = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": format!("alb-gates-{}", bed.ns)},
        "webhooks": [{
            "name": "mpod.elbv2.k8s.aws",
            "clientConfig": {"url": format!("https://{addr}/mutate-v1-pod"), "caBundle": ca_bundle},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": bed.ns, "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}},
            "failurePolicy": "Ignore", "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5
        }]
    });
    let hooks: kube::Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> = kube::Api::all(bed.client.clone());
    hooks.create(&Default::default(), &serde_json::from_value(webhook).unwrap()).await.unwrap();

    bed.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    )
    .await;
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let listener = bed.listeners(lb.load_balancer_arn().unwrap()).await.remove(0);
    let tg_arn = listener.default_actions()[0].target_group_arn().unwrap().to_string();
    let tg_name = bed.target_group(&tg_arn).await.target_group_name().unwrap().to_string();
    let gate = format!("target-health.elbv2.k8s.aws/{tg_name}");

    // The webhook gives the Service's new pods the gate. It fails open, so it is probed with
    // a server-side dry run (webhooks run, nothing is stored) until it serves.
    let pods = bed.api::<Pod>();
    let probe: Pod = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "probe", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web"}]}}),
    )
    .unwrap();
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    eventually("the webhook injects the readiness gate", Duration::from_secs(30), || async {
        let created = pods.create(&dry_run, &probe).await.ok()?;
        created.spec?.readiness_gates?.iter().any(|g| g.condition_type == gate).then_some(())
    })
    .await;

    // Every state the Deployment's pod goes through, from its creation on.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Pod>::new()));
    let version = pods.list(&ListParams::default().labels("app=web")).await.unwrap().metadata.resource_version.unwrap();
    let mut stream = pods.watch(&WatchParams::default().labels("app=web"), &version).await.unwrap().boxed();
    let watch = tokio::spawn({
        let seen = seen.clone();
        async move {
            while let Some(Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod))) = stream.next().await {
                seen.lock().unwrap().push(pod);
            }
        }
    });
    bed.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
"#,
    )
    .await;
    // The pod is registered while its gate holds it back, the gate turns True once its target
    // is healthy, and only then does the pod (KWOK, as the kubelet) turn Ready.
    let targets = bed.wait_pod_targets("app=web", 1, 8080).await;
    eventually("the Ready pod is the target", Duration::from_secs(30), || async { (bed.targets(&tg_arn).await == targets).then_some(()) })
        .await;
    let status = |pod: &Pod, t: &str| pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == t).map(|c| c.status == "True");
    eventually("the watch has seen the pod Ready", Duration::from_secs(10), || async {
        seen.lock().unwrap().last().is_some_and(|p| status(p, "Ready") == Some(true)).then_some(())
    })
    .await;
    watch.abort();
    let seen = seen.lock().unwrap().clone();
    let last = seen.last().unwrap();
    assert!(last.spec.as_ref().unwrap().readiness_gates.iter().flatten().any(|g| g.condition_type == gate), "the gate is injected");
    assert_eq!((status(last, &gate), status(last, "Ready")), (Some(true), Some(true)), "the gate turned True, the pod Ready");
    assert!(
        seen.iter().any(|p| status(p, "ContainersReady") == Some(true) && status(p, "Ready") != Some(true) && support::pod_ip(p).is_some()),
        "the running pod was not Ready while its gate was not True"
    );
    assert!(
        seen.iter().all(|p| status(p, "Ready") != Some(true) || status(p, &gate) == Some(true)),
        "never Ready before its gate was True"
    );
    hooks.delete(&format!("alb-gates-{}", bed.ns), &Default::default()).await.unwrap();
}

/// What LBC (v3.5) leaves in AWS for the Ingress `shop` routing `/` to `web:80` over HTTPS
/// with the seeded certificate: made here with the AWS API as LBC's deployers send it,
/// named as older LBC versions named them (so only the tags can match them).
struct LbcMade {
    load_balancer: String,
    listener: String,
    target_group: String,
    managed_sg: String,
    backend_sg: String,
    node_sg: String,
}

async fn make_lbc_alb(bed: &Bed, pod_ip: &str) -> LbcMade {
    use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, Tag as Ec2Tag, TagSpecification};
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, Certificate, FixedResponseActionConfig, ForwardActionConfig, Matcher, PathPatternConditionConfig,
        ProtocolEnum, RuleCondition, Tag, TargetDescription, TargetGroupTuple, TargetTypeEnum,
    };
    let stack = format!("{}/shop", bed.ns);
    let elb_tags = |resource: &str| {
        [("elbv2.k8s.aws/cluster", bed.cluster.as_str()), ("ingress.k8s.aws/stack", stack.as_str()), ("ingress.k8s.aws/resource", resource)]
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .to_vec()
    };
    let sg = |name: String, tags: Vec<(&str, &str)>| {
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroup)
            .set_tags(Some(tags.into_iter().map(|(k, v)| Ec2Tag::builder().key(k).value(v).build()).collect()))
            .build();
        bed.ec2.create_security_group().group_name(name).description("made by LBC").vpc_id(&bed.vpc_id).tag_specifications(spec).send()
    };
    let managed_sg = sg(
        "k8s-lbc-shop-managed".into(),
        vec![
            ("elbv2.k8s.aws/cluster", &bed.cluster),
            ("ingress.k8s.aws/stack", &stack),
            ("ingress.k8s.aws/resource", "ManagedLBSecurityGroup"),
        ],
    )
    .await
    .unwrap()
    .group_id()
    .unwrap()
    .to_string();
    let open_443 =
        IpPermission::builder().ip_protocol("tcp").from_port(443).to_port(443).ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build());
    bed.ec2.authorize_security_group_ingress().group_id(&managed_sg).ip_permissions(open_443.build()).send().await.unwrap();
    let backend_sg = sg(
        format!("k8s-traffic-{}-lbc", bed.cluster),
        vec![("elbv2.k8s.aws/cluster", &bed.cluster), ("elbv2.k8s.aws/resource", "backend-sg")],
    )
    .await
    .unwrap()
    .group_id()
    .unwrap()
    .to_string();
    // The rule LBC wrote on the nodes' security group (the bed's nodes have the cluster
    // group): from its backend group, on the target port, with LBC's description.
    let groups = bed
        .ec2
        .describe_security_groups()
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values(format!("eks-cluster-sg-{}", bed.cluster)).build())
        .send()
        .await
        .unwrap();
    let node_sg = groups.security_groups()[0].group_id().unwrap().to_string();
    let from_backend =
        aws_sdk_ec2::types::UserIdGroupPair::builder().group_id(&backend_sg).description("elbv2.k8s.aws/targetGroupBinding=shared");
    let node_rule = IpPermission::builder().ip_protocol("tcp").from_port(8080).to_port(8080).user_id_group_pairs(from_backend.build());
    bed.ec2.authorize_security_group_ingress().group_id(&node_sg).ip_permissions(node_rule.build()).send().await.unwrap();
    // LBC's target group defaults (model_build_target_group.go), the health check included.
    let tg = bed
        .elbv2
        .create_target_group()
        .name("k8s-lbc-web-0123456789")
        .protocol(ProtocolEnum::Http)
        .protocol_version("HTTP1")
        .port(8080)
        .vpc_id(&bed.vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .health_check_enabled(true)
        .health_check_protocol(ProtocolEnum::Http)
        .health_check_port("traffic-port")
        .health_check_path("/")
        .health_check_interval_seconds(15)
        .health_check_timeout_seconds(5)
        .healthy_threshold_count(2)
        .unhealthy_threshold_count(2)
        .matcher(Matcher::builder().http_code("200").build())
        .set_tags(Some(elb_tags(&format!("{}/shop-web:80", bed.ns))))
        .send()
        .await
        .unwrap();
    let target_group = tg.target_groups()[0].target_group_arn().unwrap().to_string();
    let subnets: Vec<String> = bed.seed["private_subnets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let lb = bed
        .elbv2
        .create_load_balancer()
        .name("k8s-lbc-shop-legacyname")
        .scheme("internal".into())
        .set_subnets(Some(subnets))
        .set_security_groups(Some(vec![managed_sg.clone(), backend_sg.clone()]))
        .set_tags(Some(elb_tags("LoadBalancer")))
        .send()
        .await
        .unwrap();
    let load_balancer = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    // Default actions and rule actions carry an Order (listener_utils.go buildSDKActions).
    let not_found = FixedResponseActionConfig::builder().status_code("404").content_type("text/plain").build();
    let cert = bed.seed["certificate_arn"].as_str().unwrap();
    let listener = bed
        .elbv2
        .create_listener()
        .load_balancer_arn(&load_balancer)
        .port(443)
        .protocol(ProtocolEnum::Https)
        .ssl_policy("ELBSecurityPolicy-2016-08")
        .certificates(Certificate::builder().certificate_arn(cert).build())
        .default_actions(Action::builder().r#type(ActionTypeEnum::FixedResponse).order(1).fixed_response_config(not_found).build())
        .set_tags(Some(elb_tags("443")))
        .send()
        .await
        .unwrap();
    let listener = listener.listeners()[0].listener_arn().unwrap().to_string();
    // Since v3.4.1 the default certificate is in the listener's certificate list too.
    bed.elbv2
        .add_listener_certificates()
        .listener_arn(&listener)
        .certificates(Certificate::builder().certificate_arn(cert).build())
        .send()
        .await
        .unwrap();
    // A forward is a ForwardConfig with one (unweighted) target group.
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .order(1)
        .forward_config(
            ForwardActionConfig::builder().target_groups(TargetGroupTuple::builder().target_group_arn(&target_group).build()).build(),
        )
        .build();
    let all_paths =
        RuleCondition::builder().field("path-pattern").path_pattern_config(PathPatternConditionConfig::builder().values("/*").build());
    bed.elbv2
        .create_rule()
        .listener_arn(&listener)
        .priority(1)
        .conditions(all_paths.build())
        .actions(forward)
        .set_tags(Some(elb_tags("443:1")))
        .send()
        .await
        .unwrap();
    // LBC had registered the pod already.
    let pod = TargetDescription::builder().id(pod_ip).port(8080).build();
    bed.elbv2.register_targets().target_group_arn(&target_group).targets(pod).send().await.unwrap();
    LbcMade { load_balancer, listener, target_group, managed_sg, backend_sg, node_sg }
}

#[tokio::test]
async fn an_alb_made_by_lbc_is_adopted_in_place() {
    let bed = Bed::start("adopt").await;
    // The pod LBC had registered is the one that runs.
    bed.apply(WEB).await;
    let targets = bed.wait_pod_targets("app=web", 1, 8080).await;
    let lbc = make_lbc_alb(&bed, &targets.first().unwrap().0).await;
    let cert = bed.seed["certificate_arn"].as_str().unwrap().to_string();
    bed.apply(&format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  finalizers: [ingress.k8s.aws/resources]
  annotations:
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
    assert_eq!(lb.load_balancer_arn(), Some(lbc.load_balancer.as_str()), "the same load balancer, its name kept");
    assert_eq!(bed.load_balancers().await.len(), 1, "no second load balancer");
    bed.wait_quiet().await;

    // Everything LBC made was already what this Ingress wants: nothing is written.
    let calls = bed.aws_calls().await;
    let written: Vec<_> = calls.iter().filter(|(op, n)| support::is_mutating(op) && **n > 0).collect();
    assert!(written.is_empty(), "no mutating AWS call once adopted (LBC's node rule is ours as it is): {written:?}");
    let node_rules = bed.ec2.describe_security_groups().group_ids(&lbc.node_sg).send().await.unwrap();
    let pairs: Vec<(Option<String>, Option<i32>)> = node_rules.security_groups()[0]
        .ip_permissions()
        .iter()
        .flat_map(|p| p.user_id_group_pairs().iter().map(|g| (g.group_id().map(str::to_string), p.from_port())))
        .collect();
    assert_eq!(pairs, [(Some(lbc.backend_sg.clone()), Some(8080))], "LBC's node rule kept, nothing added");
    assert_eq!(bed.targets(&lbc.target_group).await, targets, "the pod is LBC's target still");
    let listeners = bed.listeners(&lbc.load_balancer).await;
    assert_eq!(listeners.iter().map(|l| l.listener_arn().unwrap()).collect::<Vec<_>>(), [lbc.listener.as_str()], "the same listener");
    let listed = bed.elbv2.describe_listener_certificates().listener_arn(&lbc.listener).send().await.unwrap();
    let mut listed: Vec<(String, bool)> =
        listed.certificates().iter().map(|c| (c.certificate_arn().unwrap().to_string(), c.is_default().unwrap_or(false))).collect();
    listed.sort();
    assert_eq!(listed, [(cert.clone(), false), (cert.clone(), true)], "the default certificate, also in the list as LBC put it");
    let forwards: Vec<String> = bed
        .rules(&lbc.listener)
        .await
        .iter()
        .flat_map(|r| r.actions().iter().filter_map(|a| a.forward_config()).flat_map(|f| f.target_groups()))
        .filter_map(|t| t.target_group_arn().map(str::to_string))
        .collect();
    assert_eq!(forwards, std::slice::from_ref(&lbc.target_group), "the rule still forwards to LBC's target group");
    let mut sgs: Vec<String> = bed.load_balancer_by_dns(&dns).await.security_groups().to_vec();
    sgs.sort();
    let mut want = vec![lbc.managed_sg.clone(), lbc.backend_sg.clone()];
    want.sort();
    assert_eq!(sgs, want, "the managed group adopted and LBC's backend group kept (node rules allow traffic from it)");

    // Later edits still converge: a new path is a rule of its own, LBC's rule kept.
    let web = serde_json::json!({"service": {"name": "web", "port": {"number": 80}}});
    let edit = serde_json::json!({"spec": {"rules": [{"http": {"paths": [
        {"path": "/api", "pathType": "Exact", "backend": web},
        {"path": "/", "pathType": "Prefix", "backend": web},
    ]}}]}});
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::Merge(edit)).await.unwrap();
    bed.wait_paths(&lbc.listener, &["/api", "/*"]).await;
    assert!(bed.warnings("shop").await.is_empty(), "no warning: {:?}", bed.warnings("shop").await);

    // A certificate AWS refuses is reported, and does not hold back the rules.
    let missing = cert.rsplit_once('/').map(|(prefix, _)| format!("{prefix}/00000000-0000-0000-0000-000000000000")).unwrap();
    let edit = serde_json::json!({
        "metadata": {"annotations": {"alb.ingress.kubernetes.io/certificate-arn": format!("{cert},{missing}")}},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": web}]}}]},
    });
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::Merge(edit)).await.unwrap();
    let warning = bed.wait_warning("shop", "CertificateNotFound").await;
    assert!(warning.contains("alb.ingress.kubernetes.io/certificate-arn"), "the Warning names the annotation: {warning}");
    bed.wait_paths(&lbc.listener, &["/*"]).await;

    // LBC's target group follows the pods now: a second pod is registered beside LBC's.
    let scale = serde_json::json!({"spec": {"replicas": 2}});
    bed.api::<k8s_openapi::api::apps::v1::Deployment>().patch("web", &PatchParams::default(), &Patch::Merge(scale)).await.unwrap();
    let both = bed.wait_pod_targets("app=web", 2, 8080).await;
    assert!(both.is_superset(&targets), "the first pod is still there: {both:?}");
    eventually("both pods are targets of LBC's target group", Duration::from_secs(30), || async {
        (bed.targets(&lbc.target_group).await == both).then_some(())
    })
    .await;
}

#[tokio::test]
async fn grpc_target_groups_check_health_with_grpc_codes() {
    use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
    use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetTypeEnum};
    let bed = Bed::start("grpc").await;
    bed.apply(WEB).await;
    // gRPC needs an HTTPS listener (AWS forwards gRPC from HTTPS listeners only).
    let cert = bed.seed["certificate_arn"].as_str().unwrap().to_string();
    bed.apply(&format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    alb.ingress.kubernetes.io/certificate-arn: {cert}
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/backend-protocol-version: GRPC
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
    let listener = bed.listeners(lb.load_balancer_arn().unwrap()).await.remove(0);
    let rules = bed.rules(listener.listener_arn().unwrap()).await;
    let action = &rules[0].actions()[0];
    let tg_arn = action
        .target_group_arn()
        .or_else(|| action.forward_config().and_then(|f| f.target_groups().first()).and_then(|t| t.target_group_arn()))
        .expect("the rule forwards")
        .to_string();
    let tg = bed.target_group(&tg_arn).await;
    assert_eq!(tg.protocol_version(), Some("GRPC"));
    assert_eq!(tg.health_check_path(), Some("/AWS.ALB/healthcheck"), "LBC's gRPC default path");
    let matcher = tg.matcher().expect("a matcher");
    assert_eq!((matcher.grpc_code(), matcher.http_code()), (Some("12"), None), "gRPC codes, LBC's default 12");

    // Edited codes and path reach the same target group as a ModifyTargetGroup with GrpcCode.
    let edit = serde_json::json!({"metadata": {"annotations": {
        "alb.ingress.kubernetes.io/success-codes": "0-5",
        "alb.ingress.kubernetes.io/healthcheck-path": "/grpc.health.v1.Health/Check",
    }}});
    bed.api::<Ingress>().patch("shop", &PatchParams::default(), &Patch::Merge(edit)).await.unwrap();
    eventually("the gRPC health check is modified in place", Duration::from_secs(60), || async {
        let tg = bed.target_group(&tg_arn).await;
        let codes = tg.matcher().and_then(|m| m.grpc_code()).map(str::to_string);
        (codes.as_deref() == Some("0-5") && tg.health_check_path() == Some("/grpc.health.v1.Health/Check")).then_some(())
    })
    .await;
    bed.wait_quiet().await;
    let warnings = bed.warnings("shop").await;
    assert!(warnings.is_empty(), "no warning: {warnings:?}");
    assert_eq!(bed.aws_calls().await.get("CreateTargetGroup"), Some(&1), "one target group, modified in place");

    // The bed refuses, as AWS does, what would have passed on a lenient emulator.
    let elbv2 = &bed.elbv2;
    let vpc_id = bed.vpc_id.as_str();
    let refused = |name: &'static str, version: &'static str, matcher: Matcher| async move {
        let out = elbv2
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .protocol_version(version)
            .port(8080)
            .vpc_id(vpc_id)
            .target_type(TargetTypeEnum::Ip)
            .matcher(matcher)
            .send()
            .await;
        out.err().and_then(|e| e.code().map(str::to_string))
    };
    let invalid = Some("ValidationError".to_string());
    assert_eq!(refused("grpc-http-code", "GRPC", Matcher::builder().http_code("12").build()).await, invalid);
    assert_eq!(refused("http-grpc-code", "HTTP1", Matcher::builder().grpc_code("0").build()).await, invalid);
    assert_eq!(refused("grpc-out-of-range", "GRPC", Matcher::builder().grpc_code("100").build()).await, invalid);
    assert_eq!(refused("http-out-of-range", "HTTP1", Matcher::builder().http_code("200-500").build()).await, invalid);
}
