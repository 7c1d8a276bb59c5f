//! LBC's Gateway configuration CRDs (`gateway.k8s.aws`): LoadBalancerConfiguration,
//! TargetGroupConfiguration and ListenerRuleConfiguration, written from LBC v3.5's
//! `apis/gateway/v1` Go types: the same JSON keys, enums and required fields. LBC serves
//! `v1` (storage) and `v1beta1` (deprecated, the same schema); `crds()` ships both.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "gateway.k8s.aws";

// ---- LoadBalancerConfiguration ------------------------------------------------------

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(group = "gateway.k8s.aws", version = "v1", kind = "LoadBalancerConfiguration", plural = "loadbalancerconfigurations")]
#[kube(namespaced, status = "LoadBalancerConfigurationStatus")]
#[kube(printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerConfigurationSpec {
    /// Which side wins when both the Gateway and its GatewayClass have a configuration
    /// (honored only on the GatewayClass's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merging_mode: Option<MergeMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub load_balancer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<LoadBalancerIpAddressType>,
    /// [NLB] `on` or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_security_group_inbound_rules_on_private_link_traffic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_owned_ipv4_pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ipv4IPAMPoolId")]
    pub ipv4_ipam_pool_id: Option<String>,
    /// Takes precedence over `loadBalancerSubnetsSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_subnets: Option<Vec<SubnetConfiguration>>,
    /// Subnets whose tag (the key) has one of the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_subnets_selector: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_configurations: Option<Vec<ListenerConfiguration>>,
    /// [NLB] no security groups at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_security_group: Option<bool>,
    /// Security group IDs or names; then the controller manages no frontend group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_prefixes: Option<Vec<String>>,
    /// CIDRs allowed to reach the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ranges: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_attributes: Option<Vec<Attribute>>,
    /// AWS tags on every resource of the Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "enableICMP")]
    pub enable_icmp: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_backend_security_group_rules: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_load_balancer_capacity: Option<MinimumLoadBalancerCapacity>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "wafV2")]
    pub waf_v2: Option<WafV2Configuration>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "shieldConfiguration")]
    pub shield_advanced: Option<ShieldConfiguration>,
    /// A TargetGroupConfiguration of this namespace whose settings every Service backend of
    /// the Gateway starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_target_group_configuration: Option<NameReference>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum MergeMode {
    #[serde(rename = "prefer-gateway")]
    PreferGateway,
    #[serde(rename = "prefer-gateway-class")]
    PreferGatewayClass,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum Scheme {
    #[serde(rename = "internal")]
    Internal,
    #[serde(rename = "internet-facing")]
    InternetFacing,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum LoadBalancerIpAddressType {
    #[serde(rename = "ipv4")]
    Ipv4,
    #[serde(rename = "dualstack")]
    Dualstack,
    #[serde(rename = "dualstack-without-public-ipv4")]
    DualstackWithoutPublicIpv4,
}

/// A load balancer, listener or target group attribute.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubnetConfiguration {
    /// Subnet name or ID. (LBC's Go type always serializes it; it may be empty.)
    #[serde(default)]
    pub identifier: String,
    /// [NLB] the EIP allocation for this subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip_allocation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "privateIPv4Allocation")]
    pub private_ipv4_allocation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ipv6Allocation")]
    pub ipv6_allocation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "sourceNatIPv6Prefix")]
    pub source_nat_ipv6_prefix: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerConfiguration {
    /// `PROTOCOL:PORT`, e.g. `HTTPS:443`: the Gateway listener this applies to.
    #[schemars(regex(
        pattern = r"^(HTTP|HTTPS|TLS|TCP|UDP|TCP_UDP)?:(6553[0-5]|655[0-2]\d|65[0-4]\d{2}|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})?$"
    ))]
    pub protocol_port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn_policy: Option<AlpnPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_stickiness: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutual_authentication: Option<MutualAuthentication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_attributes: Option<Vec<Attribute>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic_enabled: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum AlpnPolicy {
    None,
    #[serde(rename = "HTTP1Only")]
    Http1Only,
    #[serde(rename = "HTTP2Only")]
    Http2Only,
    #[serde(rename = "HTTP2Optional")]
    Http2Optional,
    #[serde(rename = "HTTP2Preferred")]
    Http2Preferred,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MutualAuthentication {
    /// `on` or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(on|off)$"))]
    pub advertise_trust_store_ca_names: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_client_certificate_expiry: Option<bool>,
    /// `off`, `passthrough` or `verify`.
    #[schemars(regex(pattern = "^(off|passthrough|verify)$"))]
    pub mode: String,
    /// Name or ARN of the trust store (mode `verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_store: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct ShieldConfiguration {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct WafV2Configuration {
    #[serde(rename = "webACL")]
    pub web_acl: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MinimumLoadBalancerCapacity {
    pub capacity_units: i32,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct NameReference {
    pub name: String,
}

/// The generations of the configurations LBC last reconciled (as LBC's status).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerConfigurationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_gateway_configuration_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_gateway_class_configuration_generation: Option<i64>,
}

// ---- TargetGroupConfiguration -------------------------------------------------------

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(group = "gateway.k8s.aws", version = "v1", kind = "TargetGroupConfiguration", plural = "targetgroupconfigurations")]
#[kube(namespaced, status = "TargetGroupConfigurationStatus")]
#[kube(
    printcolumn = r#"{"name":"SERVICE-NAME","type":"string","description":"The Kubernetes Service's name","jsonPath":".spec.targetReference.name"}"#
)]
#[kube(printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupConfigurationSpec {
    /// The object (a Service by default) these settings apply to; without it the
    /// configuration serves only as a LoadBalancerConfiguration's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_reference: Option<TargetReference>,
    /// Settings for every route, unless a route configuration overrides them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_configuration: Option<TargetGroupProps>,
    /// Per-route settings: the longest `kind:namespace:name` prefix match wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_configurations: Option<Vec<RouteConfiguration>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct TargetReference {
    /// Empty: the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Service` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfiguration {
    pub route_identifier: RouteIdentifier,
    pub target_group_props: TargetGroupProps,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct RouteIdentifier {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupProps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<TargetGroupIpAddressType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_config: Option<HealthCheckConfiguration>,
    /// Instance targets: register only the nodes matching this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_attributes: Option<Vec<Attribute>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<TargetType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<ProtocolVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_control_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_multi_cluster: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum TargetGroupIpAddressType {
    #[serde(rename = "ipv4")]
    Ipv4,
    #[serde(rename = "ipv6")]
    Ipv6,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum TargetType {
    #[serde(rename = "instance")]
    Instance,
    #[serde(rename = "ip")]
    Ip,
}

/// The protocols LBC's CRD accepts (its enum lists six of the eight Go constants).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    Tls,
    Udp,
    TcpUdp,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProtocolVersion {
    Http1,
    Http2,
    Grpc,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<String>,
    /// A port number or `traffic-port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_protocol: Option<HealthCheckProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_timeout: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<HealthCheckMatcher>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HealthCheckProtocol {
    Http,
    Https,
    Tcp,
}

/// HTTP codes or gRPC codes (one of them).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckMatcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_code: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupConfigurationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_gateway_configuration_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_gateway_class_configuration_generation: Option<i64>,
}

// ---- ListenerRuleConfiguration ------------------------------------------------------

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(group = "gateway.k8s.aws", version = "v1", kind = "ListenerRuleConfiguration", plural = "listenerruleconfigurations")]
#[kube(namespaced, status = "ListenerRuleConfigurationStatus")]
#[kube(printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#)]
#[serde(rename_all = "camelCase")]
pub struct ListenerRuleConfigurationSpec {
    /// At most one authentication action and one routing action (as LBC validates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2))]
    pub actions: Option<Vec<Action>>,
    /// Only `source-ip` conditions; other matches come from the route itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub conditions: Option<Vec<ListenerRuleCondition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerRuleCondition {
    pub field: ConditionField,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "sourceIPConfig")]
    pub source_ip_config: Option<SourceIpConditionConfig>,
    /// Which of the rule's matches the source IPs apply to (all when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_indexes: Option<Vec<i64>>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum ConditionField {
    #[serde(rename = "source-ip")]
    SourceIp,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct SourceIpConditionConfig {
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub r#type: ActionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_config: Option<ForwardActionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_config: Option<RedirectActionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_response_config: Option<FixedResponseActionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticate_cognito_config: Option<AuthenticateCognitoActionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "authenticateOIDCConfig")]
    pub authenticate_oidc_config: Option<AuthenticateOidcActionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_validation_config: Option<JwtValidationActionConfig>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ActionType {
    Forward,
    FixedResponse,
    Redirect,
    AuthenticateCognito,
    #[serde(rename = "authenticate-oidc")]
    AuthenticateOidc,
    JwtValidation,
}

/// Only stickiness: the rest of a forward comes from the route's backendRefs.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ForwardActionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_stickiness_config: Option<TargetGroupStickinessConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupStickinessConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub duration_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Only the query: the rest of a redirect comes from the route's RequestRedirect filter.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct RedirectActionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FixedResponseActionConfig {
    /// 2XX, 4XX or 5XX.
    pub status_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(text/plain|text/css|text/html|application/javascript|application/json)$"))]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnUnauthenticatedRequest {
    Deny,
    Allow,
    Authenticate,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateCognitoActionConfig {
    pub user_pool_arn: String,
    pub user_pool_client_id: String,
    pub user_pool_domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_request_extra_params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_unauthenticated_request: Option<OnUnauthenticatedRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_cookie_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub session_timeout: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateOidcActionConfig {
    pub authorization_endpoint: String,
    /// The Secret (same namespace) with `clientID` and `clientSecret`.
    pub secret: NameReference,
    pub issuer: String,
    pub token_endpoint: String,
    pub user_info_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_request_extra_params: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_unauthenticated_request: Option<OnUnauthenticatedRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_cookie_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 604800))]
    pub session_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_existing_client_secret: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JwtValidationActionConfig {
    #[schemars(length(max = 256))]
    pub issuer: String,
    #[schemars(length(max = 256))]
    pub jwks_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_claims: Option<Vec<JwtAdditionalClaim>>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct JwtAdditionalClaim {
    pub format: JwtClaimFormat,
    #[schemars(length(min = 1))]
    pub name: String,
    #[schemars(length(min = 1, max = 10))]
    pub values: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum JwtClaimFormat {
    SingleString,
    StringArray,
    SpaceSeparatedValues,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerRuleConfigurationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

// ---- the CRDs -----------------------------------------------------------------------

/// The three CRDs as LBC v3.5 serves them: `v1` (storage) and `v1beta1`, the same schema,
/// served with LBC's deprecation warning, so objects written for older LBC keep working.
pub fn crds() -> Vec<CustomResourceDefinition> {
    [LoadBalancerConfiguration::crd(), TargetGroupConfiguration::crd(), ListenerRuleConfiguration::crd()]
        .into_iter()
        .map(with_deprecated_v1beta1)
        .collect()
}

fn with_deprecated_v1beta1(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut v1beta1 = crd.spec.versions[0].clone();
    v1beta1.name = "v1beta1".into();
    v1beta1.storage = false;
    v1beta1.deprecated = Some(true);
    v1beta1.deprecation_warning = Some(format!("{GROUP}/v1beta1 {} is deprecated; use {GROUP}/v1 instead", crd.spec.names.kind));
    crd.spec.versions.push(v1beta1);
    crd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_serve_v1_as_storage_and_v1beta1_deprecated() {
        for crd in crds() {
            let versions: Vec<_> = crd.spec.versions.iter().map(|v| (v.name.as_str(), v.served, v.storage, v.deprecated)).collect();
            assert_eq!(versions, [("v1", true, true, None), ("v1beta1", true, false, Some(true))], "{:?}", crd.metadata.name);
            assert_eq!(crd.spec.group, GROUP);
            assert_eq!(crd.spec.scope, "Namespaced");
        }
    }

    // From LBC's Gateway docs: listener configuration, TG health check, fixed response.
    #[test]
    fn lbc_style_objects_parse_with_lbcs_keys() {
        let lbc: LoadBalancerConfiguration = serde_yaml::from_str(
            r#"
apiVersion: gateway.k8s.aws/v1
kind: LoadBalancerConfiguration
metadata: {name: lbc-config, namespace: demo}
spec:
  scheme: internet-facing
  ipAddressType: dualstack
  loadBalancerSubnetsSelector: {"kubernetes.io/role/elb": ["1"]}
  listenerConfigurations:
  - protocolPort: HTTPS:443
    defaultCertificate: arn:aws:acm:us-west-2:111122223333:certificate/abc
    sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06
    alpnPolicy: HTTP2Preferred
  loadBalancerAttributes: [{key: idle_timeout.timeout_seconds, value: "120"}]
  wafV2: {webACL: my-acl}
  shieldConfiguration: {enabled: true}
  enableICMP: true
  ipv4IPAMPoolId: ipam-pool-1
"#,
        )
        .unwrap();
        let spec = &lbc.spec;
        assert_eq!(spec.scheme, Some(Scheme::InternetFacing));
        assert_eq!(spec.ip_address_type, Some(LoadBalancerIpAddressType::Dualstack));
        let listener = &spec.listener_configurations.as_ref().unwrap()[0];
        assert_eq!(listener.protocol_port, "HTTPS:443");
        assert_eq!(listener.alpn_policy, Some(AlpnPolicy::Http2Preferred));
        assert_eq!(spec.waf_v2.as_ref().unwrap().web_acl, "my-acl");
        assert_eq!(spec.shield_advanced, Some(ShieldConfiguration { enabled: true }));
        assert_eq!((spec.enable_icmp, spec.ipv4_ipam_pool_id.as_deref()), (Some(true), Some("ipam-pool-1")));

        let tgc: TargetGroupConfiguration = serde_yaml::from_str(
            r#"
apiVersion: gateway.k8s.aws/v1
kind: TargetGroupConfiguration
metadata: {name: grpc-tg, namespace: demo}
spec:
  targetReference: {name: grpc-svc}
  defaultConfiguration:
    targetType: ip
    protocolVersion: GRPC
    healthCheckConfig: {healthCheckProtocol: HTTP, matcher: {grpcCode: "0-99"}}
  routeConfigurations:
  - routeIdentifier: {kind: GRPCRoute, namespace: demo, name: r}
    targetGroupProps: {protocol: TCP_UDP}
"#,
        )
        .unwrap();
        let default = tgc.spec.default_configuration.as_ref().unwrap();
        assert_eq!((default.target_type, default.protocol_version), (Some(TargetType::Ip), Some(ProtocolVersion::Grpc)));
        assert_eq!(default.health_check_config.as_ref().unwrap().matcher.as_ref().unwrap().grpc_code.as_deref(), Some("0-99"));
        let route = &tgc.spec.route_configurations.as_ref().unwrap()[0];
        assert_eq!((route.route_identifier.kind.as_str(), route.target_group_props.protocol), ("GRPCRoute", Some(Protocol::TcpUdp)));

        let lrc: ListenerRuleConfiguration = serde_yaml::from_str(
            r#"
apiVersion: gateway.k8s.aws/v1
kind: ListenerRuleConfiguration
metadata: {name: fixed, namespace: demo}
spec:
  conditions: [{field: source-ip, sourceIPConfig: {values: [10.0.0.0/8]}}]
  actions:
  - type: authenticate-oidc
    authenticateOIDCConfig:
      authorizationEndpoint: https://idp/auth
      secret: {name: oidc}
      issuer: https://idp
      tokenEndpoint: https://idp/token
      userInfoEndpoint: https://idp/userinfo
  - type: fixed-response
    fixedResponseConfig: {statusCode: 404, contentType: text/plain, messageBody: gone}
"#,
        )
        .unwrap();
        let actions = lrc.spec.actions.as_ref().unwrap();
        assert_eq!(actions.iter().map(|a| a.r#type).collect::<Vec<_>>(), [ActionType::AuthenticateOidc, ActionType::FixedResponse]);
        assert_eq!(actions[1].fixed_response_config.as_ref().unwrap().status_code, 404);
        assert_eq!(lrc.spec.conditions.as_ref().unwrap()[0].field, ConditionField::SourceIp);
    }

    #[test]
    fn enum_values_outside_lbcs_are_refused() {
        let bad = "{field: source-ip-range}";
        assert!(serde_yaml::from_str::<ListenerRuleCondition>(bad).is_err());
        assert!(serde_yaml::from_str::<TargetGroupProps>("{protocolVersion: HTTP3}").is_err());
    }
}
