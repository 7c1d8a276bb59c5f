//! Command-line flags (with environment fallbacks) for `run`.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Kubernetes cluster name; tags and names of every AWS resource derive from it.
    #[arg(long, env = "CLUSTER_NAME")]
    pub cluster_name: String,
    /// AWS Region (else the SDK's usual chain: AWS_REGION, profile, IMDS).
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// VPC the load balancers, target groups and security groups live in.
    #[arg(long, env = "AWS_VPC_ID")]
    pub aws_vpc_id: String,
    /// Value of the legacy `kubernetes.io/ingress.class` annotation this controller serves.
    #[arg(long, env = "INGRESS_CLASS", default_value = "alb")]
    pub ingress_class: String,
    /// IngressClass `spec.controller` this controller serves.
    #[arg(long, env = "CONTROLLER_NAME", default_value = "ingress.k8s.aws/alb")]
    pub controller_name: String,
    /// Target type of backends without a `target-type` annotation: `instance` (as LBC) or `ip`.
    #[arg(long, env = "DEFAULT_TARGET_TYPE", default_value = "instance", value_parser = crate::model::TargetType::parse)]
    pub default_target_type: crate::model::TargetType,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_BIND_ADDRESS", default_value = "127.0.0.1:8080")]
    pub metrics_bind_address: SocketAddr,
    /// How often a converged group's AWS resources are re-read to find edits made
    /// outside the controller. Between checks a resync of a converged group makes no AWS call.
    #[arg(long, env = "DRIFT_CHECK_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub drift_check_interval: Duration,
    /// How long discovered subnets are cached.
    #[arg(long, env = "DISCOVERY_TTL", default_value = "5m", value_parser = parse_duration)]
    pub discovery_ttl: Duration,
    /// Changes to one Ingress (or its Services and EndpointSlices) within this window are
    /// coalesced into one reconcile; endpoint changes of a group, into one target update
    /// (waiting while they keep coming, at most three times this).
    #[arg(long, env = "RECONCILE_DEBOUNCE", default_value = "100ms", value_parser = parse_duration)]
    pub reconcile_debounce: Duration,
    /// Groups reconciled at the same time.
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 4)]
    pub max_concurrent_reconciles: u16,
    /// Groups whose targets the endpoint fast path updates at the same time (each update
    /// is one Register and/or one Deregister call per target group it touches).
    #[arg(long, env = "MAX_CONCURRENT_TARGET_UPDATES", default_value_t = 16)]
    pub max_concurrent_target_updates: u16,
    // The AWS call budget (aws/budget.rs): one token bucket per API class, `capacity:refill-per-second`
    // or `off`. Defaults are AWS's documented per-account figures (Class::aws_default); set them lower when other
    // tools share the account and Region.
    /// AWS call budget: the ELBv2 account-level bucket every ELBv2 call also draws from (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_ELBV2_ACCOUNT", default_value_t = crate::aws::budget::Class::Elbv2Account.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_elbv2_account: crate::aws::budget::Limit,
    /// AWS call budget: ELBv2 Describe* calls (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_ELBV2_DESCRIBE", default_value_t = crate::aws::budget::Class::Elbv2Describe.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_elbv2_describe: crate::aws::budget::Limit,
    /// AWS call budget: ELBv2 RegisterTargets and DeregisterTargets (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_ELBV2_REGISTRATION", default_value_t = crate::aws::budget::Class::Elbv2Registration.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_elbv2_registration: crate::aws::budget::Limit,
    /// AWS call budget: ELBv2 mutating calls other than registration and resource-intensive ones (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_ELBV2_WRITE", default_value_t = crate::aws::budget::Class::Elbv2Write.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_elbv2_write: crate::aws::budget::Limit,
    /// AWS call budget: ELBv2 CreateLoadBalancer and SetSubnets (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_ELBV2_RESOURCE_INTENSIVE", default_value_t = crate::aws::budget::Class::Elbv2ResourceIntensive.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_elbv2_resource_intensive: crate::aws::budget::Limit,
    /// AWS call budget: EC2 Describe*/List*/Search*/Get* calls not in the unfiltered class (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_EC2_DESCRIBE", default_value_t = crate::aws::budget::Class::Ec2Describe.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_ec2_describe: crate::aws::budget::Limit,
    /// AWS call budget: EC2 DescribeInstances, DescribeNetworkInterfaces, DescribeSecurityGroups (and the other actions AWS lists as unfiltered and unpaginated), filtered or not (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_EC2_DESCRIBE_UNFILTERED", default_value_t = crate::aws::budget::Class::Ec2DescribeUnfiltered.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_ec2_describe_unfiltered: crate::aws::budget::Limit,
    /// AWS call budget: EC2 mutating calls other than resource-intensive ones (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_EC2_WRITE", default_value_t = crate::aws::budget::Class::Ec2Write.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_ec2_write: crate::aws::budget::Limit,
    /// AWS call budget: EC2 AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress (and the other actions AWS lists as resource-intensive) (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_EC2_RESOURCE_INTENSIVE", default_value_t = crate::aws::budget::Class::Ec2ResourceIntensive.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_ec2_resource_intensive: crate::aws::budget::Limit,
    /// AWS call budget: ACM calls (ListCertificates) (`capacity:refill-per-second` or `off`).
    #[arg(long, env = "AWS_BUDGET_ACM", default_value_t = crate::aws::budget::Class::Acm.aws_default(), value_parser = crate::aws::budget::Limit::parse)]
    pub aws_budget_acm: crate::aws::budget::Limit,
    /// Run only while holding a coordination.k8s.io Lease (for several replicas).
    #[arg(long, env = "LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the leader election Lease (default: POD_NAMESPACE, else kube-system).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the leader election Lease.
    #[arg(long, env = "LEADER_ELECTION_ID", default_value = "alb-controller-leader")]
    pub leader_election_id: String,
    /// How long a leader's lease lasts without renewal.
    #[arg(long, env = "LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// Address of the readiness-gate admission webhook (HTTPS).
    #[arg(long, env = "WEBHOOK_BIND_ADDRESS", default_value = "0.0.0.0:9443")]
    pub webhook_bind_address: SocketAddr,
    /// Certificate (PEM) of the webhook; with the key, turns the webhook on.
    #[arg(long, env = "WEBHOOK_CERT_FILE")]
    pub webhook_cert_file: Option<std::path::PathBuf>,
    /// Private key (PEM) of the webhook.
    #[arg(long, env = "WEBHOOK_KEY_FILE")]
    pub webhook_key_file: Option<std::path::PathBuf>,
    /// Give load balancers with a managed security group the cluster's shared backend
    /// security group too, and open the targets' security groups to it (as LBC). Off: the
    /// targets' security groups allow each load balancer's managed group instead.
    #[arg(long, env = "ENABLE_BACKEND_SECURITY_GROUP", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_backend_security_group: bool,
    /// Use this existing security group as the backend security group instead of creating
    /// (and later deleting) `k8s-traffic-<cluster>-<hash>`.
    #[arg(long, env = "BACKEND_SECURITY_GROUP")]
    pub backend_security_group: Option<String>,
    /// Rules on the targets' security groups allow all TCP ports from the backend group
    /// instead of only the target and health-check ports.
    #[arg(long, env = "DISABLE_RESTRICTED_SG_RULES", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub disable_restricted_sg_rules: bool,
    /// A rule forwarding to one Service that does not exist answers a fixed 503 ("Backend
    /// service does not exist") instead of failing its Ingress (as LBC).
    #[arg(long, env = "TOLERATE_NON_EXISTENT_BACKEND_SERVICE", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tolerate_non_existent_backend_service: bool,
    /// A `use-annotation` backend whose `actions.*` annotation is missing answers a fixed
    /// 503 ("Backend action does not exist") instead of failing its Ingress (as LBC).
    #[arg(long, env = "TOLERATE_NON_EXISTENT_BACKEND_ACTION", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tolerate_non_existent_backend_action: bool,
    /// LBC's feature gates, `Name=true,Other=false` (see FEATURES for the names and defaults).
    #[arg(long, env = "FEATURE_GATES", default_value = "", value_parser = FeatureGates::parse)]
    pub feature_gates: FeatureGates,
    /// Log as JSON lines.
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,
}

/// LBC's feature gates (pkg/config/feature_gates.go, v3.5) with their defaults. The flag
/// accepts all of them, so an LBC command line runs unchanged; what each does here is in the
/// README.
pub const FEATURES: &[(&str, bool)] = &[
    ("ListenerRulesTagging", true),
    ("WeightedTargetGroups", true),
    ("ServiceTypeLoadBalancerOnly", false),
    ("EndpointsFailOpen", true),
    ("EnableServiceController", true),
    ("EnableIPTargetType", true),
    ("EnableTCPUDPListener", false),
    ("EnableRGTAPI", false),
    ("SubnetsClusterTagCheck", true),
    ("NLBHealthCheckAdvancedConfig", true),
    ("NLBSecurityGroup", true),
    ("ALBSingleSubnet", false),
    ("LBCapacityReservation", true),
    ("SubnetDiscoveryByReachability", true),
    ("NLBGatewayAPI", true),
    ("ALBGatewayAPI", true),
    ("GlobalAcceleratorController", false),
    ("EnhancedDefaultBehavior", false),
    ("EnableDefaultTagsLowPriority", false),
    ("ALBTargetControlAgent", false),
    ("GatewayListenerSet", true),
    ("EnableCertificateManagement", false),
    ("IngressPlanAnnotation", false),
];

/// Every gate of FEATURES, at its default unless the flag set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureGates(std::collections::BTreeMap<&'static str, bool>);

impl FeatureGates {
    /// LBC's syntax: comma-separated `Name=bool` (bool as Go's strconv.ParseBool reads it);
    /// empty items are skipped; an unknown name is an error.
    pub fn parse(s: &str) -> Result<FeatureGates, String> {
        let mut gates: std::collections::BTreeMap<_, _> = FEATURES.iter().copied().collect();
        for item in s.split(',').filter(|i| !i.is_empty()) {
            let (name, value) = item.split_once('=').ok_or_else(|| format!("{item:?} is not Name=true or Name=false"))?;
            let (name, value) = (name.trim(), value.trim());
            let value = match value {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                _ => return Err(format!("{item:?}: {value:?} is not a boolean")),
            };
            let Some((known, _)) = FEATURES.iter().find(|(f, _)| *f == name) else {
                let names: Vec<_> = FEATURES.iter().map(|(f, _)| *f).collect();
                return Err(format!("unknown feature gate {name:?}; known: {}", names.join(", ")));
            };
            gates.insert(known, value);
        }
        Ok(FeatureGates(gates))
    }

    pub fn enabled(&self, name: &str) -> bool {
        self.0.get(name).copied().unwrap_or(false)
    }
}

impl Default for FeatureGates {
    fn default() -> Self {
        FeatureGates(FEATURES.iter().copied().collect())
    }
}

impl std::fmt::Display for FeatureGates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<_> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&items.join(","))
    }
}

impl Config {
    /// The setting of one bucket of the AWS call budget.
    pub fn aws_budget(&self, class: crate::aws::budget::Class) -> crate::aws::budget::Limit {
        use crate::aws::budget::Class;
        match class {
            Class::Elbv2Account => self.aws_budget_elbv2_account,
            Class::Elbv2Describe => self.aws_budget_elbv2_describe,
            Class::Elbv2Registration => self.aws_budget_elbv2_registration,
            Class::Elbv2Write => self.aws_budget_elbv2_write,
            Class::Elbv2ResourceIntensive => self.aws_budget_elbv2_resource_intensive,
            Class::Ec2Describe => self.aws_budget_ec2_describe,
            Class::Ec2DescribeUnfiltered => self.aws_budget_ec2_describe_unfiltered,
            Class::Ec2Write => self.aws_budget_ec2_write,
            Class::Ec2ResourceIntensive => self.aws_budget_ec2_resource_intensive,
            Class::Acm => self.aws_budget_acm,
        }
    }

    /// LBC's ALBGatewayAPI gate: run the Gateway API controller for ALBs (GatewayClass
    /// controllerName `gateway.k8s.aws/alb`).
    #[allow(dead_code)] // read by the Gateway controller (issue 12), which is not wired yet
    pub fn alb_gateway_api(&self) -> bool {
        self.feature_gates.enabled("ALBGatewayAPI")
    }

    /// The settings the model builder follows.
    pub fn model_options(&self) -> crate::model::Options {
        crate::model::Options {
            default_target_type: self.default_target_type,
            backend_security_group: self.enable_backend_security_group,
            unrestricted_sg_rules: self.disable_restricted_sg_rules,
            tolerate_missing_backend_service: self.tolerate_non_existent_backend_service,
            tolerate_missing_backend_action: self.tolerate_non_existent_backend_action,
        }
    }
}

/// `250ms`, `90s`, `10m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse::<u64>().map(Duration::from_millis).map_err(|_| format!("{s:?} is not a duration like 250ms, 30s, 10m or 1h"));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration like 30s, 10m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration like 30s, 10m or 1h")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn feature_gates_take_lbcs_syntax_and_defaults() {
        let defaults = FeatureGates::parse("").unwrap();
        assert_eq!(defaults, FeatureGates::default());
        assert!(defaults.enabled("ALBGatewayAPI") && defaults.enabled("NLBGatewayAPI"));
        assert!(!defaults.enabled("ALBSingleSubnet"));

        let gates = FeatureGates::parse("ALBGatewayAPI=false, ALBSingleSubnet=true,,NLBGatewayAPI=F").unwrap();
        assert!(!gates.enabled("ALBGatewayAPI") && gates.enabled("ALBSingleSubnet") && !gates.enabled("NLBGatewayAPI"));
        assert!(gates.enabled("WeightedTargetGroups"), "gates not named keep their defaults");
        assert!(gates.to_string().contains("ALBGatewayAPI=false,ALBSingleSubnet=true,ALBTargetControlAgent=false"));
    }

    #[test]
    fn feature_gates_refuse_unknown_names_and_bad_values() {
        let err = FeatureGates::parse("ALBGatewayApi=true").unwrap_err();
        assert!(err.contains("unknown feature gate \"ALBGatewayApi\""), "{err}");
        assert!(FeatureGates::parse("ALBGatewayAPI").unwrap_err().contains("not Name=true"));
        assert!(FeatureGates::parse("ALBGatewayAPI=yes").unwrap_err().contains("not a boolean"));
    }

    #[test]
    fn alb_gateway_api_follows_the_flag() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let base = ["x", "--cluster-name", "c", "--aws-vpc-id", "vpc-1"];
        let on = Cli::try_parse_from(base).unwrap().config;
        assert!(on.alb_gateway_api());
        let off = Cli::try_parse_from(base.iter().copied().chain(["--feature-gates", "ALBGatewayAPI=false"])).unwrap().config;
        assert!(!off.alb_gateway_api());
        assert!(Cli::try_parse_from(base.iter().copied().chain(["--feature-gates", "Nope=true"])).is_err());
    }
}
