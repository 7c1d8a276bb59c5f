//! IngressClassParams (`elbv2.k8s.aws/v1beta1`), LBC's CRD: settings for every Ingress
//! of an IngressClass. Values set here win over the Ingresses' annotations.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(group = "elbv2.k8s.aws", version = "v1beta1", kind = "IngressClassParams", plural = "ingressclassparams")]
#[kube(shortname = "icp")]
#[serde(rename_all = "camelCase")]
pub struct IngressClassParamsSpec {
    /// Only Ingresses in namespaces matching this selector may use the class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Every Ingress of the class joins this IngressGroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupParams>,
    /// `internal` or `internet-facing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(internal|internet-facing)$"))]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "inboundCIDRs")]
    pub inbound_cidrs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<SubnetSelector>,
    /// `ipv4`, `dualstack` or `dualstack-without-public-ipv4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(ipv4|dualstack|dualstack-without-public-ipv4)$"))]
    pub ip_address_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<KeyValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_attributes: Option<Vec<KeyValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<Vec<String>>,
    /// `instance` or `ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(instance|ip)$"))]
    pub target_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_redirect_port: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct GroupParams {
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct SubnetSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    /// Subnets carrying, for each key, one of the listed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// Whether a label selector selects an object with `labels` (an empty selector selects all).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => !labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    match_labels && expressions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"team": "web"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}, {"key": "legacy", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        let labels = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
        assert!(selects(&sel, &labels(&[("team", "web"), ("env", "prod")])));
        assert!(!selects(&sel, &labels(&[("team", "web"), ("env", "dev")])));
        assert!(!selects(&sel, &labels(&[("team", "web"), ("env", "prod"), ("legacy", "1")])));
        assert!(selects(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn spec_reads_lbc_field_names() {
        let spec: IngressClassParamsSpec = serde_json::from_value(serde_json::json!({
            "group": {"name": "shared"}, "scheme": "internet-facing", "inboundCIDRs": ["10.0.0.0/8"],
            "subnets": {"tags": {"tier": ["public"]}}, "tags": [{"key": "team", "value": "web"}], "targetType": "ip",
            "sslRedirectPort": "443", "certificateArn": ["arn:c"]
        }))
        .unwrap();
        assert_eq!(spec.group.unwrap().name, "shared");
        assert_eq!(spec.inbound_cidrs.unwrap(), vec!["10.0.0.0/8"]);
        assert_eq!(spec.subnets.unwrap().tags.unwrap()["tier"], vec!["public"]);
    }
}
