//! Samples from the Gateway API documentation (gateway-api.sigs.k8s.io guides) parse into
//! the generated types, and what the API server would store survives a round trip.

use super::gatewayclasses::GatewayClass;
use super::gateways::{Gateway, GatewayListenersAllowedRoutesNamespacesFrom, GatewayListenersTlsMode};
use super::grpcroutes::{GrpcRoute, GrpcRouteRulesMatchesMethodType};
use super::httproutes::{HttpRoute, HttpRouteRulesFiltersType, HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesPathType};
use super::referencegrants::ReferenceGrant;

const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: example-gateway
  namespace: default
spec:
  gatewayClassName: example-gateway-class
  listeners:
  - name: http
    protocol: HTTP
    port: 80
    allowedRoutes:
      namespaces:
        from: Same
  - name: https
    protocol: HTTPS
    port: 443
    hostname: "*.example.com"
    tls:
      mode: Terminate
      certificateRefs:
      - kind: Secret
        name: example-com-cert
    allowedRoutes:
      kinds:
      - kind: HTTPRoute
      namespaces:
        from: Selector
        selector:
          matchLabels:
            shared-gateway-access: "true"
"#;

// The http-routing guide's bar-route, with the traffic-splitting and redirect guides' parts.
const HTTP_ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bar-route
spec:
  parentRefs:
  - name: example-gateway
    sectionName: https
  hostnames:
  - "bar.example.com"
  rules:
  - matches:
    - headers:
      - type: Exact
        name: env
        value: canary
    backendRefs:
    - name: bar-svc-canary
      port: 8080
  - matches:
    - path:
        type: PathPrefix
        value: /
    backendRefs:
    - name: foo-v1
      port: 8080
      weight: 90
    - name: foo-v2
      port: 8080
      weight: 10
  - matches:
    - path:
        type: Exact
        value: /old
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        statusCode: 301
"#;

#[test]
fn a_gateway_from_the_docs_parses() {
    let gw: Gateway = serde_yaml::from_str(GATEWAY).unwrap();
    assert_eq!(gw.metadata.name.as_deref(), Some("example-gateway"));
    assert_eq!(gw.spec.gateway_class_name, "example-gateway-class");
    let [http, https] = &gw.spec.listeners[..] else { panic!("two listeners: {:?}", gw.spec.listeners) };
    assert_eq!((http.name.as_str(), http.protocol.as_str(), http.port), ("http", "HTTP", 80));
    let from = |l: &super::gateways::GatewayListeners| l.allowed_routes.as_ref()?.namespaces.as_ref()?.from.clone();
    assert_eq!(from(http), Some(GatewayListenersAllowedRoutesNamespacesFrom::Same));
    assert_eq!(from(https), Some(GatewayListenersAllowedRoutesNamespacesFrom::Selector));
    assert_eq!(https.hostname.as_deref(), Some("*.example.com"));
    let tls = https.tls.as_ref().unwrap();
    assert_eq!(tls.mode, Some(GatewayListenersTlsMode::Terminate));
    assert_eq!(tls.certificate_refs.as_ref().unwrap()[0].name, "example-com-cert");
    let kinds = https.allowed_routes.as_ref().unwrap().kinds.as_ref().unwrap();
    assert_eq!(kinds[0].kind, "HTTPRoute");
}

#[test]
fn an_httproute_from_the_docs_parses() {
    let route: HttpRoute = serde_yaml::from_str(HTTP_ROUTE).unwrap();
    let spec = &route.spec;
    let parent = &spec.parent_refs.as_ref().unwrap()[0];
    assert_eq!((parent.name.as_str(), parent.section_name.as_deref()), ("example-gateway", Some("https")));
    assert_eq!(spec.hostnames.as_deref(), Some(&["bar.example.com".to_string()][..]));
    let rules = spec.rules.as_ref().unwrap();
    assert_eq!(rules.len(), 3);

    let header = &rules[0].matches.as_ref().unwrap()[0].headers.as_ref().unwrap()[0];
    assert_eq!((header.name.as_str(), header.value.as_str()), ("env", "canary"));
    assert_eq!(header.r#type, Some(HttpRouteRulesMatchesHeadersType::Exact));

    let path = rules[1].matches.as_ref().unwrap()[0].path.as_ref().unwrap();
    assert_eq!(path.r#type, Some(HttpRouteRulesMatchesPathType::PathPrefix));
    let weights: Vec<_> = rules[1].backend_refs.as_ref().unwrap().iter().map(|b| (b.name.as_str(), b.port, b.weight)).collect();
    assert_eq!(weights, [("foo-v1", Some(8080), Some(90)), ("foo-v2", Some(8080), Some(10))]);

    let filter = &rules[2].filters.as_ref().unwrap()[0];
    assert_eq!(filter.r#type, HttpRouteRulesFiltersType::RequestRedirect);
    assert_eq!(filter.request_redirect.as_ref().unwrap().status_code, Some(301));
}

#[test]
fn a_path_match_type_outside_the_spec_is_refused() {
    let bad = HTTP_ROUTE.replace("type: PathPrefix", "type: Regex");
    let err = serde_yaml::from_str::<HttpRoute>(&bad).unwrap_err().to_string();
    assert!(err.contains("Regex"), "{err}");
}

#[test]
fn a_grpcroute_a_referencegrant_and_a_gatewayclass_from_the_docs_parse() {
    let route: GrpcRoute = serde_yaml::from_str(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: foo-route
spec:
  parentRefs:
  - name: example-gateway
  hostnames:
  - "foo.example.com"
  rules:
  - matches:
    - method:
        service: com.example.User
        method: Login
    backendRefs:
    - name: foo-svc
      port: 50051
"#,
    )
    .unwrap();
    let rule = &route.spec.rules.as_ref().unwrap()[0];
    let method = rule.matches.as_ref().unwrap()[0].method.as_ref().unwrap();
    assert_eq!((method.service.as_deref(), method.method.as_deref()), (Some("com.example.User"), Some("Login")));
    // Exact is the API's default, filled in by the API server, not by us.
    assert_eq!(method.r#type, None::<GrpcRouteRulesMatchesMethodType>);
    assert_eq!(rule.backend_refs.as_ref().unwrap()[0].port, Some(50051));

    let grant: ReferenceGrant = serde_yaml::from_str(
        r#"
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: allow-prod-routes
  namespace: backends
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    namespace: prod
  to:
  - group: ""
    kind: Service
"#,
    )
    .unwrap();
    assert_eq!(grant.spec.from[0].namespace, "prod");
    assert_eq!((grant.spec.to[0].group.as_str(), grant.spec.to[0].kind.as_str(), grant.spec.to[0].name.as_deref()), ("", "Service", None));

    let class: GatewayClass = serde_yaml::from_str(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: alb
spec:
  controllerName: gateway.k8s.aws/alb
"#,
    )
    .unwrap();
    assert_eq!(class.spec.controller_name, "gateway.k8s.aws/alb");
}

#[test]
fn types_serialize_back_to_what_they_read() {
    let gw: Gateway = serde_yaml::from_str(GATEWAY).unwrap();
    let route: HttpRoute = serde_yaml::from_str(HTTP_ROUTE).unwrap();
    let as_value = |y: &str| serde_yaml::from_str::<serde_json::Value>(y).unwrap();
    assert_eq!(serde_json::to_value(&gw).unwrap(), as_value(GATEWAY));
    assert_eq!(serde_json::to_value(&route).unwrap(), as_value(HTTP_ROUTE));
}
