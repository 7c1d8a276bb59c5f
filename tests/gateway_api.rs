//! The bed serves the Gateway API standard CRDs (v1.6.3) and LBC's Gateway configuration
//! CRDs (deploy/crds) that hack/controlplane/up.sh installs: objects written with the
//! generated types (src/k8s/gateway_api) and src/k8s/gateway_config.rs are accepted, read
//! back equal, defaulted and validated by the real schemas.

#[allow(dead_code)]
#[path = "../src/k8s/gateway_api/mod.rs"]
mod gateway_api;
#[allow(dead_code)]
#[path = "../src/k8s/gateway_config.rs"]
mod gateway_config;

use gateway_api::gatewayclasses::{GatewayClass, GatewayClassSpec};
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::{HttpRoute, HttpRouteRulesMatchesPathType};
use gateway_api::referencegrants::ReferenceGrant;
use gateway_config::{ListenerRuleConfiguration, LoadBalancerConfiguration, Scheme, TargetGroupConfiguration};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

async fn client() -> Client {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG is not set: integration tests run on the bed that `make test` starts");
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("read the admin kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("admin kubeconfig");
    Client::try_from(config).expect("kube client")
}

/// A namespace of this test's own (deleted at the test's end; a failed test leaves it to
/// look at).
async fn create_namespace(client: &Client, test: &str) -> String {
    let name = format!("{test}-{}", rand::random_range(100_000..999_999));
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
    name
}

async fn delete_namespace(client: &Client, name: &str) {
    Api::<Namespace>::all(client.clone()).delete(name, &DeleteParams::default()).await.unwrap();
}

/// Creates `obj` from YAML and reads it back; returns (what was sent, what the API server holds).
async fn create_and_read<K>(api: &Api<K>, yaml: &str) -> (K, K)
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let sent: K = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    api.create(&PostParams::default(), &sent).await.unwrap_or_else(|e| panic!("create {yaml}: {e}"));
    let name = sent.meta().name.clone().unwrap();
    let read = api.get(&name).await.unwrap();
    (sent, read)
}

#[tokio::test]
async fn the_gateway_api_and_lbc_crds_are_established() {
    let api = Api::<CustomResourceDefinition>::all(client().await);
    for name in [
        "gatewayclasses.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
        "grpcroutes.gateway.networking.k8s.io",
        "referencegrants.gateway.networking.k8s.io",
        "loadbalancerconfigurations.gateway.k8s.aws",
        "targetgroupconfigurations.gateway.k8s.aws",
        "listenerruleconfigurations.gateway.k8s.aws",
    ] {
        let crd = api.get(name).await.unwrap_or_else(|e| panic!("CRD {name}: {e} (hack/controlplane/up.sh installs it)"));
        let established =
            crd.status.and_then(|s| s.conditions).unwrap_or_default().iter().any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established, "{name} is not Established");
        if name.starts_with("gateways.") {
            let bundle = crd.metadata.annotations.unwrap_or_default().get("gateway.networking.k8s.io/bundle-version").cloned();
            assert_eq!(bundle.as_deref(), Some("v1.6.3"), "the pinned Gateway API release");
        }
    }
}

#[tokio::test]
async fn gateway_api_objects_are_served_and_read_back_equal() {
    let client = client().await;
    let ns = create_namespace(&client, "gateway-api").await;
    let n = ns.as_str();

    // Every field the CRDs default is given, so what comes back is exactly what went in.
    let class_name = format!("alb-{n}");
    let classes = Api::<GatewayClass>::all(client.clone());
    let (sent, read) = create_and_read(
        &classes,
        &format!("{{apiVersion: gateway.networking.k8s.io/v1, kind: GatewayClass, metadata: {{name: {class_name}}}, spec: {{controllerName: gateway.k8s.aws/alb}}}}"),
    )
    .await;
    assert_eq!(read.spec, sent.spec);
    assert_eq!(read.spec, GatewayClassSpec { controller_name: "gateway.k8s.aws/alb".into(), ..Default::default() });
    // The API server owns status: a new class is Pending until a controller accepts it.
    let reason =
        read.status.and_then(|s| s.conditions).unwrap_or_default().iter().find(|c| c.type_ == "Accepted").map(|c| c.reason.clone());
    assert_eq!(reason.as_deref(), Some("Pending"));

    let gateways = Api::<Gateway>::namespaced(client.clone(), n);
    let (sent, read) = create_and_read(
        &gateways,
        &format!(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web}}
spec:
  gatewayClassName: {class_name}
  listeners:
  - name: http
    protocol: HTTP
    port: 80
    allowedRoutes: {{namespaces: {{from: Same}}}}
  - name: https
    protocol: HTTPS
    port: 443
    hostname: "*.example.com"
    tls:
      mode: Terminate
      certificateRefs: [{{group: "", kind: Secret, name: example-com}}]
    allowedRoutes:
      kinds: [{{group: gateway.networking.k8s.io, kind: HTTPRoute}}]
      namespaces: {{from: All}}
"#
        ),
    )
    .await;
    assert_eq!(read.spec, sent.spec);

    let routes = Api::<HttpRoute>::namespaced(client.clone(), n);
    let (sent, read) = create_and_read(
        &routes,
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: web, sectionName: https}]
  hostnames: [app.example.com]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /api}
      headers: [{type: Exact, name: env, value: canary}]
      queryParams: [{type: Exact, name: v, value: "2"}]
      method: GET
    backendRefs:
    - {group: "", kind: Service, name: api-v1, port: 80, weight: 90}
    - {group: "", kind: Service, name: api-v2, port: 80, weight: 10}
  - matches: [{path: {type: RegularExpression, value: "/img/.*\\.png"}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, statusCode: 301}
"#,
    )
    .await;
    assert_eq!(read.spec, sent.spec);

    // A route that leaves matches and backend defaults out gets the spec's defaults.
    let (_, read) = create_and_read(
        &routes,
        r#"{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {name: minimal},
            spec: {parentRefs: [{name: web}], rules: [{backendRefs: [{name: app, port: 80}]}]}}"#,
    )
    .await;
    let parent = &read.spec.parent_refs.as_ref().unwrap()[0];
    assert_eq!((parent.group.as_deref(), parent.kind.as_deref()), (Some("gateway.networking.k8s.io"), Some("Gateway")));
    let rule = &read.spec.rules.as_ref().unwrap()[0];
    let path = rule.matches.as_ref().unwrap()[0].path.clone().unwrap();
    assert_eq!((path.r#type, path.value.as_deref()), (Some(HttpRouteRulesMatchesPathType::PathPrefix), Some("/")));
    let backend = &rule.backend_refs.as_ref().unwrap()[0];
    assert_eq!((backend.group.as_deref(), backend.kind.as_deref(), backend.weight), (Some(""), Some("Service"), Some(1)));

    let grpc = Api::<GrpcRoute>::namespaced(client.clone(), n);
    let (sent, read) = create_and_read(
        &grpc,
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: users}
spec:
  parentRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: web, sectionName: https}]
  hostnames: [grpc.example.com]
  rules:
  - matches:
    - method: {type: Exact, service: com.example.User, method: Login}
      headers: [{type: Exact, name: x-tenant, value: a}]
    backendRefs: [{group: "", kind: Service, name: users, port: 50051, weight: 1}]
"#,
    )
    .await;
    assert_eq!(read.spec, sent.spec);

    let grants = Api::<ReferenceGrant>::namespaced(client.clone(), n);
    let (sent, read) = create_and_read(
        &grants,
        &format!(
            r#"
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: from-apps}}
spec:
  from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps-{n}}}]
  to: [{{group: "", kind: Service, name: api-v1}}]
"#
        ),
    )
    .await;
    assert_eq!(read.spec, sent.spec);

    // The schemas validate: a listener port of 0 and a path type outside the enum are refused.
    let bad_gateway = serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "bad"}, "spec": {"gatewayClassName": class_name,
        "listeners": [{"name": "http", "protocol": "HTTP", "port": 0}]}});
    let err = gateways.create(&PostParams::default(), &serde_json::from_value(bad_gateway).unwrap()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(e) if e.code == 422), "{err}");
    let bad_route =
        DynamicObject::new("bad", &ApiResource::from_gvk(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute")))
            .data(serde_json::json!({"spec": {"rules": [{"matches": [{"path": {"type": "Regex", "value": "/"}}]}]}}));
    let dynamic = Api::<DynamicObject>::namespaced_with(client.clone(), n, &ApiResource::erase::<HttpRoute>(&()));
    let err = dynamic.create(&PostParams::default(), &bad_route).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(e) if e.code == 422 && e.message.contains("Regex")), "{err}");

    classes.delete(&class_name, &DeleteParams::default()).await.unwrap();
    delete_namespace(&client, n).await;
}

#[tokio::test]
async fn lbc_gateway_configuration_objects_are_served_and_read_back_equal() {
    let client = client().await;
    let ns = create_namespace(&client, "gateway-config").await;
    let n = ns.as_str();

    let lbcs = Api::<LoadBalancerConfiguration>::namespaced(client.clone(), n);
    let (sent, read) = create_and_read(
        &lbcs,
        r#"
apiVersion: gateway.k8s.aws/v1
kind: LoadBalancerConfiguration
metadata: {name: internal}
spec:
  scheme: internal
  ipAddressType: ipv4
  loadBalancerSubnets: [{identifier: subnet-1}, {identifier: private-b}]
  securityGroups: [sg-1]
  sourceRanges: [10.0.0.0/8]
  listenerConfigurations:
  - protocolPort: HTTPS:443
    defaultCertificate: arn:aws:acm:us-east-1:000000000000:certificate/a
    certificates: [arn:aws:acm:us-east-1:000000000000:certificate/b]
    sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06
    mutualAuthentication: {mode: verify, trustStore: my-store}
  loadBalancerAttributes: [{key: idle_timeout.timeout_seconds, value: "120"}]
  tags: {team: web}
  minimumLoadBalancerCapacity: {capacityUnits: 100}
  defaultTargetGroupConfiguration: {name: defaults}
"#,
    )
    .await;
    assert_eq!(read.spec, sent.spec);
    assert_eq!(read.spec.scheme, Some(Scheme::Internal));

    let tgcs = Api::<TargetGroupConfiguration>::namespaced(client.clone(), n);
    let (sent, read) = create_and_read(
        &tgcs,
        r#"
apiVersion: gateway.k8s.aws/v1
kind: TargetGroupConfiguration
metadata: {name: api}
spec:
  targetReference: {name: api}
  defaultConfiguration:
    targetType: ip
    protocolVersion: HTTP2
    healthCheckConfig: {healthCheckPath: /healthz, healthCheckProtocol: HTTP, healthCheckInterval: 10, matcher: {httpCode: "200-299"}}
    targetGroupAttributes: [{key: deregistration_delay.timeout_seconds, value: "30"}]
  routeConfigurations:
  - routeIdentifier: {kind: HTTPRoute, namespace: apps, name: web}
    targetGroupProps: {targetType: instance, nodeSelector: {matchLabels: {pool: web}}}
"#,
    )
    .await;
    assert_eq!(read.spec, sent.spec);

    let lrcs = Api::<ListenerRuleConfiguration>::namespaced(client.clone(), n);
    let (sent, read) = create_and_read(
        &lrcs,
        r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata: {name: gone}
spec:
  conditions: [{field: source-ip, sourceIPConfig: {values: [192.0.2.0/24]}}]
  actions: [{type: fixed-response, fixedResponseConfig: {statusCode: 410, contentType: text/plain, messageBody: gone}}]
  tags: {rule: gone}
"#,
    )
    .await;
    assert_eq!(read.spec, sent.spec);

    // v1beta1, as objects made for older LBC releases say, is served too and is the same object.
    let v1beta1 = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.k8s.aws", "v1beta1", "LoadBalancerConfiguration"),
        "loadbalancerconfigurations",
    );
    let old = DynamicObject::new("old-style", &v1beta1).data(serde_json::json!({"spec": {"scheme": "internet-facing"}}));
    Api::<DynamicObject>::namespaced_with(client.clone(), n, &v1beta1).create(&PostParams::default(), &old).await.unwrap();
    assert_eq!(lbcs.get("old-style").await.unwrap().spec.scheme, Some(Scheme::InternetFacing));

    // The enums are LBC's: a scheme outside them is refused by the API server.
    let bad = DynamicObject::new("bad", &v1beta1).data(serde_json::json!({"spec": {"scheme": "public"}}));
    let err = Api::<DynamicObject>::namespaced_with(client.clone(), n, &v1beta1).create(&PostParams::default(), &bad).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(e) if e.code == 422), "{err}");
    delete_namespace(&client, n).await;
}
