//! The bed's ELBv2 emulator (localstack/elbv2_plugin) refuses what AWS refuses and accepts
//! what AWS accepts: one test per kind of refused request, each in a fresh AWS account, with
//! the SDK error code asserted and the state read back where a refusal must change nothing.
//! No controller runs here; the requests are the ones the API reference and quotas rule on.

mod support;

use std::collections::BTreeMap;
use std::fmt::Debug;

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, ForwardActionConfig, HostHeaderConditionConfig, HostHeaderRewriteConfig,
    HttpHeaderConditionConfig, HttpRequestMethodConditionConfig, Matcher, PathPatternConditionConfig, ProtocolEnum,
    QueryStringConditionConfig, QueryStringKeyValuePair, RewriteConfig, Rule, RuleCondition, RulePriorityPair, RuleTransform,
    SourceIpConditionConfig, Tag, TargetGroupTuple, TargetTypeEnum, TransformTypeEnum, UrlRewriteConfig,
};
use support::Account;

/// The error code of a request the emulator must refuse (and its message, for failures).
fn refused<T: Debug, E: ProvideErrorMetadata + Debug, R: Debug>(what: &str, result: Result<T, SdkError<E, R>>) -> String {
    match result {
        Ok(out) => panic!("{what}: accepted, AWS refuses it: {out:?}"),
        Err(e) => {
            let code = e.code().unwrap_or_else(|| panic!("{what}: no error code: {e:?}")).to_string();
            eprintln!("{what}: {code}: {}", e.message().unwrap_or_default());
            code
        }
    }
}

/// The result of a request the emulator must accept.
fn accepted<T, E: ProvideErrorMetadata + Debug, R: Debug>(what: &str, result: Result<T, SdkError<E, R>>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: refused ({:?}: {:?}), AWS accepts it", e.code(), e.message()))
}

fn forward(tg: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(tg).build()
}

fn fixed_404() -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(aws_sdk_elasticloadbalancingv2::types::FixedResponseActionConfig::builder().status_code("404").build())
        .build()
}

fn path(values: &[&str]) -> RuleCondition {
    let config = PathPatternConditionConfig::builder().set_values(Some(values.iter().map(|v| v.to_string()).collect())).build();
    RuleCondition::builder().field("path-pattern").path_pattern_config(config).build()
}

fn host(values: &[&str]) -> RuleCondition {
    let config = HostHeaderConditionConfig::builder().set_values(Some(values.iter().map(|v| v.to_string()).collect())).build();
    RuleCondition::builder().field("host-header").host_header_config(config).build()
}

fn header(name: &str, values: &[&str]) -> RuleCondition {
    let config = HttpHeaderConditionConfig::builder()
        .http_header_name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build();
    RuleCondition::builder().field("http-header").http_header_config(config).build()
}

fn query(pairs: &[(&str, &str)]) -> RuleCondition {
    let values = pairs.iter().map(|(k, v)| QueryStringKeyValuePair::builder().key(*k).value(*v).build()).collect();
    let config = QueryStringConditionConfig::builder().set_values(Some(values)).build();
    RuleCondition::builder().field("query-string").query_string_config(config).build()
}

fn method(values: &[&str]) -> RuleCondition {
    let config = HttpRequestMethodConditionConfig::builder().set_values(Some(values.iter().map(|v| v.to_string()).collect())).build();
    RuleCondition::builder().field("http-request-method").http_request_method_config(config).build()
}

fn source_ip(values: &[&str]) -> RuleCondition {
    let config = SourceIpConditionConfig::builder().set_values(Some(values.iter().map(|v| v.to_string()).collect())).build();
    RuleCondition::builder().field("source-ip").source_ip_config(config).build()
}

fn path_regex(values: &[&str]) -> RuleCondition {
    let config = PathPatternConditionConfig::builder().set_regex_values(Some(values.iter().map(|v| v.to_string()).collect())).build();
    RuleCondition::builder().field("path-pattern").path_pattern_config(config).build()
}

fn strings(values: &[&str]) -> Option<Vec<String>> {
    Some(values.iter().map(|v| v.to_string()).collect())
}

fn host_regex(values: &[&str]) -> RuleCondition {
    let config = HostHeaderConditionConfig::builder().set_regex_values(strings(values)).build();
    RuleCondition::builder().field("host-header").host_header_config(config).build()
}

fn header_regex(name: &str, values: &[&str]) -> RuleCondition {
    let config = HttpHeaderConditionConfig::builder().http_header_name(name).set_regex_values(strings(values)).build();
    RuleCondition::builder().field("http-header").http_header_config(config).build()
}

fn rewrite(regex: &str, replace: &str) -> RewriteConfig {
    RewriteConfig::builder().regex(regex).replace(replace).build()
}

fn url_rewrite(regex: &str, replace: &str) -> RuleTransform {
    let config = UrlRewriteConfig::builder().rewrites(rewrite(regex, replace)).build();
    RuleTransform::builder().r#type(TransformTypeEnum::UrlRewrite).url_rewrite_config(config).build()
}

fn host_rewrite(regex: &str, replace: &str) -> RuleTransform {
    let config = HostHeaderRewriteConfig::builder().rewrites(rewrite(regex, replace)).build();
    RuleTransform::builder().r#type(TransformTypeEnum::HostHeaderRewrite).host_header_rewrite_config(config).build()
}

fn tags(n: usize, prefix: &str) -> Vec<Tag> {
    (0..n).map(|i| Tag::builder().key(format!("{prefix}{i}")).value("v").build()).collect()
}

/// An ALB in a fresh account with an HTTP:80 listener forwarding to an HTTP target group.
struct Alb {
    account: Account,
    lb: String,
    tg: String,
    listener: String,
}

impl Alb {
    async fn new(name: &str) -> Alb {
        let account = Account::seeded(name).await;
        let c = &account.elbv2;
        let subnets: Vec<String> =
            account.seed["public_subnets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
        let lb = c.create_load_balancer().name(name).set_subnets(Some(subnets)).send().await.unwrap();
        let lb = lb.load_balancers()[0].load_balancer_arn().unwrap().to_string();
        let vpc = account.seed["vpc_id"].as_str().unwrap().to_string();
        let tg = c
            .create_target_group()
            .name(format!("{name}-tg"))
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .unwrap();
        let tg = tg.target_groups()[0].target_group_arn().unwrap().to_string();
        let listener =
            c.create_listener().load_balancer_arn(&lb).protocol(ProtocolEnum::Http).port(80).default_actions(forward(&tg)).send().await;
        let listener = listener.unwrap().listeners()[0].listener_arn().unwrap().to_string();
        Alb { account, lb, tg, listener }
    }

    fn c(&self) -> &Client {
        &self.account.elbv2
    }

    fn vpc(&self) -> String {
        self.account.seed["vpc_id"].as_str().unwrap().to_string()
    }

    fn certificate(&self) -> Certificate {
        Certificate::builder().certificate_arn(self.account.seed["certificate_arn"].as_str().unwrap()).build()
    }

    /// A rule on the HTTP listener forwarding to the target group.
    async fn rule(&self, priority: i32, conditions: Vec<RuleCondition>) -> String {
        let what = format!("CreateRule priority {priority} {conditions:?}");
        accepted(&what, self.create_rule(priority, conditions).await).rules()[0].rule_arn().unwrap().to_string()
    }

    async fn create_rule(
        &self,
        priority: i32,
        conditions: Vec<RuleCondition>,
    ) -> Result<
        aws_sdk_elasticloadbalancingv2::operation::create_rule::CreateRuleOutput,
        SdkError<
            aws_sdk_elasticloadbalancingv2::operation::create_rule::CreateRuleError,
            aws_sdk_elasticloadbalancingv2::config::http::HttpResponse,
        >,
    > {
        self.c()
            .create_rule()
            .listener_arn(&self.listener)
            .priority(priority)
            .set_conditions(Some(conditions))
            .actions(forward(&self.tg))
            .send()
            .await
    }

    /// Rule ARN → priority of the listener's non-default rules, read back.
    async fn priorities(&self) -> BTreeMap<String, String> {
        let out = self.c().describe_rules().listener_arn(&self.listener).send().await.unwrap();
        out.rules()
            .iter()
            .filter(|r| !r.is_default().unwrap_or(false))
            .map(|r| (r.rule_arn().unwrap().to_string(), r.priority().unwrap().to_string()))
            .collect()
    }

    /// The rule as DescribeRules answers it.
    async fn described(&self, arn: &str) -> Rule {
        let out = self.c().describe_rules().rule_arns(arn).send().await;
        accepted(&format!("DescribeRules {arn}"), out).rules()[0].clone()
    }

    /// A rule with transforms on the HTTP listener forwarding to the target group.
    async fn rule_with_transforms(&self, priority: i32, conditions: Vec<RuleCondition>, transforms: Vec<RuleTransform>) -> String {
        let out = self.create_rule_with_transforms(priority, conditions, transforms).await;
        accepted(&format!("CreateRule priority {priority} with transforms"), out).rules()[0].rule_arn().unwrap().to_string()
    }

    async fn create_rule_with_transforms(
        &self,
        priority: i32,
        conditions: Vec<RuleCondition>,
        transforms: Vec<RuleTransform>,
    ) -> Result<
        aws_sdk_elasticloadbalancingv2::operation::create_rule::CreateRuleOutput,
        SdkError<
            aws_sdk_elasticloadbalancingv2::operation::create_rule::CreateRuleError,
            aws_sdk_elasticloadbalancingv2::config::http::HttpResponse,
        >,
    > {
        self.c()
            .create_rule()
            .listener_arn(&self.listener)
            .priority(priority)
            .set_conditions(Some(conditions))
            .actions(forward(&self.tg))
            .set_transforms(Some(transforms))
            .send()
            .await
    }

    async fn target_group(&self, name: &str, version: &str) -> String {
        let out = self
            .c()
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .protocol_version(version)
            .port(80)
            .vpc_id(self.vpc())
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await;
        accepted(&format!("CreateTargetGroup {version}"), out).target_groups()[0].target_group_arn().unwrap().to_string()
    }
}

fn pair(arn: &str, priority: i32) -> RulePriorityPair {
    RulePriorityPair::builder().rule_arn(arn).priority(priority).build()
}

#[tokio::test]
async fn one_listener_per_port_and_an_identical_create_returns_it() {
    let alb = Alb::new("emu-listener").await;
    let again =
        alb.c().create_listener().load_balancer_arn(&alb.lb).protocol(ProtocolEnum::Http).port(80).default_actions(forward(&alb.tg)).send();
    let again = accepted("CreateListener identical to the existing one", again.await);
    assert_eq!(again.listeners()[0].listener_arn(), Some(alb.listener.as_str()), "AWS answers with the existing listener");

    let other = alb.c().create_listener().load_balancer_arn(&alb.lb).protocol(ProtocolEnum::Http).port(80).default_actions(fixed_404());
    assert_eq!(refused("CreateListener on a used port, other settings", other.send().await), "DuplicateListener");

    let second =
        alb.c().create_listener().load_balancer_arn(&alb.lb).protocol(ProtocolEnum::Http).port(8080).default_actions(fixed_404()).send();
    let second = accepted("CreateListener on a free port", second.await).listeners()[0].listener_arn().unwrap().to_string();
    let moved = alb.c().modify_listener().listener_arn(&second).port(80).send().await;
    assert_eq!(refused("ModifyListener to a used port", moved), "DuplicateListener");

    let listeners = alb.c().describe_listeners().load_balancer_arn(&alb.lb).send().await.unwrap();
    let mut ports: Vec<i32> = listeners.listeners().iter().filter_map(|l| l.port()).collect();
    ports.sort();
    assert_eq!(ports, vec![80, 8080], "nothing changed");
}

#[tokio::test]
async fn rule_priorities_are_1_to_50000_and_unique_per_listener() {
    let alb = Alb::new("emu-priority").await;
    for p in [0, 50_001] {
        assert_eq!(refused(&format!("CreateRule priority {p}"), alb.create_rule(p, vec![path(&["/p"])]).await), "ValidationError");
    }
    let top = alb.rule(50_000, vec![path(&["/top"])]).await;
    assert_eq!(refused("CreateRule on a used priority", alb.create_rule(50_000, vec![path(&["/other"])]).await), "PriorityInUse");
    for p in [0, 50_001] {
        let out = alb.c().set_rule_priorities().rule_priorities(pair(&top, p)).send().await;
        assert_eq!(refused(&format!("SetRulePriorities priority {p}"), out), "ValidationError");
    }
    assert_eq!(alb.priorities().await, BTreeMap::from([(top, "50000".to_string())]));
}

#[tokio::test]
async fn set_rule_priorities_swaps_two_rules_in_one_call() {
    let alb = Alb::new("emu-swap").await;
    let a = alb.rule(1, vec![path(&["/a"])]).await;
    let b = alb.rule(2, vec![path(&["/b"])]).await;
    let c = alb.rule(3, vec![path(&["/c"])]).await;
    // A rotation too: each rule takes a priority another one gives up in the same call.
    let out = alb.c().set_rule_priorities().rule_priorities(pair(&a, 2)).rule_priorities(pair(&b, 1)).send().await;
    let out = accepted("SetRulePriorities swapping two rules", out);
    let answered: BTreeMap<String, String> =
        out.rules().iter().map(|r| (r.rule_arn().unwrap().to_string(), r.priority().unwrap().to_string())).collect();
    assert_eq!(answered, BTreeMap::from([(a.clone(), "2".into()), (b.clone(), "1".into())]));
    let expected = BTreeMap::from([(a.clone(), "2".to_string()), (b.clone(), "1".to_string()), (c.clone(), "3".to_string())]);
    assert_eq!(alb.priorities().await, expected);

    let out = alb.c().set_rule_priorities().rule_priorities(pair(&a, 3)).rule_priorities(pair(&b, 2)).rule_priorities(pair(&c, 1));
    accepted("SetRulePriorities rotating three rules", out.send().await);
    let expected = BTreeMap::from([(a, "3".to_string()), (b, "2".to_string()), (c, "1".to_string())]);
    assert_eq!(alb.priorities().await, expected);
}

#[tokio::test]
async fn a_refused_set_rule_priorities_changes_nothing() {
    let alb = Alb::new("emu-atomic").await;
    let a = alb.rule(1, vec![path(&["/a"])]).await;
    let b = alb.rule(2, vec![path(&["/b"])]).await;
    let c = alb.rule(3, vec![path(&["/c"])]).await;
    let before = alb.priorities().await;

    // `a` could move alone, but `b` would end on `c`'s priority, which `c` keeps.
    let out = alb.c().set_rule_priorities().rule_priorities(pair(&a, 10)).rule_priorities(pair(&b, 3)).send().await;
    assert_eq!(refused("SetRulePriorities ending with two rules on one priority", out), "PriorityInUse");
    assert_eq!(alb.priorities().await, before, "nothing changed, not even the move that was free");

    let out = alb.c().set_rule_priorities().rule_priorities(pair(&a, 20)).rule_priorities(pair(&c, 20)).send().await;
    assert_eq!(refused("SetRulePriorities giving one priority twice", out), "ValidationError");
    assert_eq!(alb.priorities().await, before);

    let gone = format!("{}/0123456789abcdef", alb.listener.replace(":listener/", ":listener-rule/"));
    let out = alb.c().set_rule_priorities().rule_priorities(pair(&a, 30)).rule_priorities(pair(&gone, 31)).send().await;
    assert_eq!(refused("SetRulePriorities naming a rule that does not exist", out), "RuleNotFound");
    assert_eq!(alb.priorities().await, before);

    let out = alb.c().set_rule_priorities().rule_priorities(pair(&a, 40)).rule_priorities(pair(&b, 0)).send().await;
    assert_eq!(refused("SetRulePriorities with one priority out of range", out), "ValidationError");
    assert_eq!(alb.priorities().await, before);

    let out = alb.c().set_rule_priorities().rule_priorities(pair(&a, 50)).rule_priorities(pair(&a, 51)).send().await;
    assert_eq!(refused("SetRulePriorities naming a rule twice", out), "ValidationError");
    assert_eq!(alb.priorities().await, before);

    let rules = alb.c().describe_rules().listener_arn(&alb.listener).send().await.unwrap();
    let default = rules.rules().iter().find(|r| r.is_default() == Some(true)).unwrap().rule_arn().unwrap().to_string();
    let out = alb.c().set_rule_priorities().rule_priorities(pair(&a, 60)).rule_priorities(pair(&default, 61)).send().await;
    assert_eq!(refused("SetRulePriorities moving the default rule", out), "OperationNotPermitted");
    assert_eq!(alb.priorities().await, before);
}

#[tokio::test]
async fn condition_values_over_their_lengths_are_refused() {
    let alb = Alb::new("emu-length").await;
    let long_host = format!("{}.example.com", "a".repeat(129 - ".example.com".len()));
    let long_path = format!("/{}", "p".repeat(128));
    let long = "v".repeat(129);
    let cases: Vec<(&str, RuleCondition)> = vec![
        ("a 129-character host", host(&[&long_host])),
        ("a 129-character path", path(&[&long_path])),
        ("a 129-character header value", header("X-Env", &[&long])),
        ("a 41-character header name", header(&"h".repeat(41), &["v"])),
        ("a 129-character query-string value", query(&[("k", &long)])),
        ("a 129-character query-string key", query(&[(&long, "v")])),
        ("a 41-character method", method(&[&"M".repeat(41)])),
        ("a 129-character path regex", path_regex(&[&format!("^{}$", "p".repeat(127))])),
    ];
    for (what, condition) in cases {
        assert_eq!(refused(&format!("CreateRule with {what}"), alb.create_rule(10, vec![condition]).await), "ValidationError");
    }
    let ok_host = format!("{}.example.com", "a".repeat(128 - ".example.com".len()));
    let rule = alb.rule(10, vec![host(&[&ok_host]), path(&[&long_path[..128]])]).await;
    let modified = alb.c().modify_rule().rule_arn(&rule).conditions(path(&[&long_path])).send().await;
    assert_eq!(refused("ModifyRule to a 129-character path", modified), "ValidationError");
}

#[tokio::test]
async fn at_most_five_condition_values_per_rule_across_its_conditions() {
    let alb = Alb::new("emu-values").await;
    let six_in_one = vec![path(&["/1", "/2", "/3", "/4", "/5", "/6"])];
    assert_eq!(refused("CreateRule with 6 values in one condition", alb.create_rule(1, six_in_one).await), "ValidationError");
    let six_across = vec![host(&["a.example.com", "b.example.com"]), path(&["/1", "/2"]), header("X-Env", &["x"]), query(&[("k", "v")])];
    assert_eq!(refused("CreateRule with 6 values across conditions", alb.create_rule(1, six_across).await), "ValidationError");
    let five = vec![host(&["a.example.com", "b.example.com"]), path(&["/1", "/2"]), header("X-Env", &["x"])];
    let rule = alb.rule(1, five).await;
    let modified = alb.c().modify_rule().rule_arn(&rule).conditions(path(&["/1", "/2", "/3"])).conditions(method(&["GET", "PUT", "POST"]));
    assert_eq!(refused("ModifyRule to 6 values", modified.send().await), "ValidationError");
}

#[tokio::test]
async fn at_most_five_wildcards_per_rule() {
    let alb = Alb::new("emu-wildcards").await;
    let six = vec![host(&["*.a?.example.com"]), path(&["/*/*", "/x/*?"])];
    assert_eq!(refused("CreateRule with 6 wildcards", alb.create_rule(1, six).await), "ValidationError");
    alb.rule(1, vec![host(&["*.a?.example.com"]), path(&["/*/*", "/x/*"])]).await;
    // An escaped `*` in a query string is a literal, not a wildcard.
    alb.rule(2, vec![query(&[("a", "\\*\\*\\*"), ("b", "\\*\\*\\*")]), path(&["/*"])]).await;
}

#[tokio::test]
async fn one_condition_per_field_except_http_header_and_query_string() {
    let alb = Alb::new("emu-fields").await;
    let cases = [
        ("two host-header conditions", vec![host(&["a.example.com"]), host(&["b.example.com"])]),
        ("two path-pattern conditions", vec![path(&["/a"]), path(&["/b"])]),
        ("two http-request-method conditions", vec![method(&["GET"]), method(&["PUT"])]),
    ];
    for (what, conditions) in cases {
        assert_eq!(refused(&format!("CreateRule with {what}"), alb.create_rule(1, conditions).await), "ValidationError");
    }
    alb.rule(1, vec![header("X-A", &["1"]), header("X-B", &["2"]), query(&[("a", "1")]), query(&[("b", "2")])]).await;
}

#[tokio::test]
async fn condition_values_must_be_unique_non_empty_and_of_allowed_characters() {
    let alb = Alb::new("emu-chars").await;
    let cases = [
        ("the same host twice", host(&["a.example.com", "a.example.com"])),
        ("no value", path(&[])),
        ("an underscore in a host", host(&["a_b.example.com"])),
        ("a port in a host", host(&["example.com:8443"])),
        ("a host without a dot", host(&["localhost"])),
        ("a space in a path", path(&["/a b"])),
        ("a comma in a path", path(&["/a,/b"])),
        ("a lowercase method", method(&["get"])),
        ("a wildcard in a header name", header("X-*", &["v"])),
        ("the host header as an http-header", header("Host", &["a.example.com"])),
        ("a source IP that is no CIDR", source_ip(&["10.0.0.300/8"])),
    ];
    for (what, condition) in cases {
        assert_eq!(refused(&format!("CreateRule with {what}"), alb.create_rule(1, vec![condition]).await), "ValidationError");
    }
    alb.rule(1, vec![host(&["*.Example.COM"]), path(&["/a-b_c.d/$~'@:+&*?"]), method(&["GET", "CUSTOM_VERB-X"])]).await;
    alb.rule(2, vec![source_ip(&["10.0.0.0/8", "2001:db8::/32"]), path_regex(&["^/api/v[0-9]+/.*$"])]).await;
}

#[tokio::test]
async fn more_than_100_rules_per_load_balancer_are_refused() {
    let alb = Alb::new("emu-rules").await;
    for p in 1..=100 {
        alb.rule(p, vec![path(&[&format!("/{p}")])]).await;
    }
    assert_eq!(refused("CreateRule number 101", alb.create_rule(101, vec![path(&["/101"])]).await), "TooManyRules");
}

#[tokio::test]
async fn more_than_50_listeners_per_load_balancer_are_refused() {
    let alb = Alb::new("emu-listeners").await;
    // The load balancer has its listener on port 80; 49 more make the quota's 50.
    for port in 8001..8050 {
        let out =
            alb.c().create_listener().load_balancer_arn(&alb.lb).protocol(ProtocolEnum::Http).port(port).default_actions(forward(&alb.tg));
        accepted(&format!("CreateListener on port {port}"), out.send().await);
    }
    let out =
        alb.c().create_listener().load_balancer_arn(&alb.lb).protocol(ProtocolEnum::Http).port(8050).default_actions(forward(&alb.tg));
    assert_eq!(refused("CreateListener number 51", out.send().await), "TooManyListeners");
}

#[tokio::test]
async fn load_balancer_and_target_group_names_are_checked() {
    let alb = Alb::new("emu-names").await;
    let subnets: Vec<String> =
        alb.account.seed["public_subnets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let bad = ["a".repeat(33), "a_b".into(), "-ab".into(), "ab-".into(), "a.b".into()];
    for name in bad.iter().map(String::as_str).chain(["internal-ab"]) {
        let out = alb.c().create_load_balancer().name(name).set_subnets(Some(subnets.clone())).send().await;
        assert_eq!(refused(&format!("CreateLoadBalancer named {name:?}"), out), "ValidationError");
    }
    accepted(
        "CreateLoadBalancer with a 32-character name",
        alb.c().create_load_balancer().name("b".repeat(32)).set_subnets(Some(subnets)).send().await,
    );
    for name in &bad {
        let out = alb.c().create_target_group().name(name).protocol(ProtocolEnum::Http).port(80).vpc_id(alb.vpc()).send().await;
        assert_eq!(refused(&format!("CreateTargetGroup named {name:?}"), out), "ValidationError");
    }
    let out = alb.c().create_target_group().name("t".repeat(32)).protocol(ProtocolEnum::Http).port(80).vpc_id(alb.vpc()).send().await;
    accepted("CreateTargetGroup with a 32-character name", out);
}

#[tokio::test]
async fn https_listeners_and_only_they_take_a_certificate_and_ssl_policy() {
    let alb = Alb::new("emu-https").await;
    let https =
        alb.c().create_listener().load_balancer_arn(&alb.lb).protocol(ProtocolEnum::Https).port(443).default_actions(forward(&alb.tg));
    assert_eq!(refused("CreateListener HTTPS without a certificate", https.send().await), "ValidationError");
    let http = alb
        .c()
        .create_listener()
        .load_balancer_arn(&alb.lb)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .certificates(alb.certificate())
        .default_actions(forward(&alb.tg));
    assert_eq!(refused("CreateListener HTTP with a certificate", http.send().await), "ValidationError");
    let http = alb
        .c()
        .create_listener()
        .load_balancer_arn(&alb.lb)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .ssl_policy("ELBSecurityPolicy-2016-08")
        .default_actions(forward(&alb.tg));
    assert_eq!(refused("CreateListener HTTP with an SSL policy", http.send().await), "ValidationError");
    let to_https = alb.c().modify_listener().listener_arn(&alb.listener).protocol(ProtocolEnum::Https).port(443).send().await;
    assert_eq!(refused("ModifyListener to HTTPS without a certificate", to_https), "ValidationError");

    let https = alb
        .c()
        .create_listener()
        .load_balancer_arn(&alb.lb)
        .protocol(ProtocolEnum::Https)
        .port(443)
        .certificates(alb.certificate())
        .default_actions(forward(&alb.tg));
    accepted("CreateListener HTTPS with a certificate", https.send().await);
}

#[tokio::test]
async fn grpc_and_http2_target_groups_only_behind_https_listeners() {
    let alb = Alb::new("emu-grpc").await;
    let grpc = alb.target_group("emu-grpc-g", "GRPC").await;
    let http2 = alb.target_group("emu-grpc-h2", "HTTP2").await;
    for (version, tg) in [("GRPC", &grpc), ("HTTP2", &http2)] {
        let listener =
            alb.c().create_listener().load_balancer_arn(&alb.lb).protocol(ProtocolEnum::Http).port(8080).default_actions(forward(tg));
        assert_eq!(refused(&format!("CreateListener HTTP forwarding to {version}"), listener.send().await), "InvalidLoadBalancerAction");
        let rule = alb.c().create_rule().listener_arn(&alb.listener).priority(1).conditions(path(&["/g"])).actions(forward(tg));
        assert_eq!(refused(&format!("CreateRule on HTTP forwarding to {version}"), rule.send().await), "InvalidLoadBalancerAction");
    }
    let weighted = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(TargetGroupTuple::builder().target_group_arn(&alb.tg).weight(50).build())
                .target_groups(TargetGroupTuple::builder().target_group_arn(&grpc).weight(50).build())
                .build(),
        )
        .build();
    let rule = alb.rule(1, vec![path(&["/r"])]).await;
    let modified = alb.c().modify_rule().rule_arn(&rule).actions(weighted.clone()).send().await;
    assert_eq!(refused("ModifyRule on HTTP forwarding (weighted) to GRPC", modified), "InvalidLoadBalancerAction");
    let modified = alb.c().modify_listener().listener_arn(&alb.listener).default_actions(forward(&grpc)).send().await;
    assert_eq!(refused("ModifyListener HTTP to forward to GRPC", modified), "InvalidLoadBalancerAction");

    let https = alb
        .c()
        .create_listener()
        .load_balancer_arn(&alb.lb)
        .protocol(ProtocolEnum::Https)
        .port(443)
        .certificates(alb.certificate())
        .default_actions(forward(&grpc));
    let https = accepted("CreateListener HTTPS forwarding to GRPC", https.send().await).listeners()[0].listener_arn().unwrap().to_string();
    let rule = alb.c().create_rule().listener_arn(&https).priority(1).conditions(path(&["/h2"])).actions(weighted).send().await;
    accepted("CreateRule on HTTPS forwarding to GRPC", rule);
    let to_http = alb.c().modify_listener().listener_arn(&https).protocol(ProtocolEnum::Http).port(8443).send().await;
    assert_eq!(refused("ModifyListener HTTPS to HTTP while it forwards to GRPC", to_http), "InvalidLoadBalancerAction");
}

#[tokio::test]
async fn tag_limits_on_create_and_add_tags() {
    let alb = Alb::new("emu-tags").await;
    let tg = |name: &str| alb.c().create_target_group().name(name).protocol(ProtocolEnum::Http).port(80).vpc_id(alb.vpc());
    assert_eq!(refused("CreateTargetGroup with 51 tags", tg("emu-tags-51").set_tags(Some(tags(51, "k"))).send().await), "TooManyTags");
    let rule = alb.c().create_rule().listener_arn(&alb.listener).priority(1).conditions(path(&["/t"])).actions(forward(&alb.tg));
    assert_eq!(refused("CreateRule with 51 tags", rule.set_tags(Some(tags(51, "k"))).send().await), "TooManyTags");
    let bad = [
        ("a 129-character key", Tag::builder().key("k".repeat(129)).value("v").build()),
        ("a 257-character value", Tag::builder().key("k").value("v".repeat(257)).build()),
        ("a key starting with aws:", Tag::builder().key("aws:owner").value("v").build()),
    ];
    for (what, tag) in &bad {
        assert_eq!(
            refused(&format!("CreateTargetGroup with {what}"), tg("emu-tags-bad").tags(tag.clone()).send().await),
            "ValidationError"
        );
        let add = alb.c().add_tags().resource_arns(&alb.lb).tags(tag.clone()).send().await;
        assert_eq!(refused(&format!("AddTags with {what}"), add), "ValidationError");
    }

    let twice = tg("emu-tags-twice").tags(Tag::builder().key("k").value("1").build()).tags(Tag::builder().key("k").value("2").build());
    assert_eq!(refused("CreateTargetGroup with a key twice", twice.send().await), "DuplicateTagKeys");

    // 50 tags per resource, whether set at once or a few at a time.
    let tagged = accepted("CreateTargetGroup with 50 tags", tg("emu-tags-50").set_tags(Some(tags(50, "k"))).send().await);
    let tagged = tagged.target_groups()[0].target_group_arn().unwrap().to_string();
    let add = alb.c().add_tags().resource_arns(&tagged).tags(Tag::builder().key("one-more").value("v").build()).send().await;
    assert_eq!(refused("AddTags beyond 50", add), "TooManyTags");
    accepted("AddTags 12 tags", alb.c().add_tags().resource_arns(&alb.lb).set_tags(Some(tags(12, "a"))).send().await);
    accepted("AddTags 38 more", alb.c().add_tags().resource_arns(&alb.lb).set_tags(Some(tags(38, "b"))).send().await);
    accepted("AddTags overwriting a tag at 50", alb.c().add_tags().resource_arns(&alb.lb).set_tags(Some(tags(1, "a"))).send().await);
    let add = alb.c().add_tags().resource_arns(&alb.lb).set_tags(Some(tags(1, "c"))).send().await;
    assert_eq!(refused("AddTags the 51st tag", add), "TooManyTags");
    let described = alb.c().describe_tags().resource_arns(&alb.lb).send().await.unwrap();
    assert_eq!(described.tag_descriptions()[0].tags().len(), 50);
}

#[tokio::test]
async fn health_checks_are_checked_per_protocol_version() {
    let alb = Alb::new("emu-health").await;
    let tg = |name: &str, version: &str| {
        alb.c().create_target_group().name(name).protocol(ProtocolEnum::Http).protocol_version(version).port(80).vpc_id(alb.vpc())
    };
    let cases = [
        ("an HTTP code on GRPC", tg("emu-h1", "GRPC").matcher(Matcher::builder().http_code("200").build())),
        ("a gRPC code on HTTP1", tg("emu-h2", "HTTP1").matcher(Matcher::builder().grpc_code("0").build())),
        ("an HTTP code over 499", tg("emu-h3", "HTTP1").matcher(Matcher::builder().http_code("200-500").build())),
        ("a gRPC code over 99", tg("emu-h4", "GRPC").matcher(Matcher::builder().grpc_code("100").build())),
        ("a timeout not below the interval", tg("emu-h5", "HTTP1").health_check_interval_seconds(10).health_check_timeout_seconds(10)),
        ("an interval over 300", tg("emu-h6", "HTTP1").health_check_interval_seconds(301)),
    ];
    for (what, request) in cases {
        assert_eq!(refused(&format!("CreateTargetGroup with {what}"), request.send().await), "ValidationError");
    }
    let grpc = tg("emu-h7", "GRPC").matcher(Matcher::builder().grpc_code("0-99").build()).send().await;
    accepted("CreateTargetGroup GRPC with a gRPC code range", grpc);
}

#[tokio::test]
async fn regex_conditions_are_stored_and_returned_as_sent() {
    let alb = Alb::new("emu-regex").await;
    let conditions = vec![
        host_regex(&["^(api|www)\\.example\\.com(:[0-9]+)?$"]),
        path_regex(&["^/api/v[0-9]+/.*$", "^/health$"]),
        header_regex("X-Env", &["^(dev|prod)$"]),
    ];
    let created = accepted("CreateRule with regex conditions", alb.create_rule(1, conditions.clone()).await);
    assert_eq!(created.rules()[0].conditions(), conditions.as_slice(), "CreateRule answers the conditions as sent");
    let rule = created.rules()[0].rule_arn().unwrap().to_string();
    assert_eq!(alb.described(&rule).await.conditions(), conditions.as_slice(), "DescribeRules returns them as sent");

    let modified = vec![path_regex(&["^/v2/(.*)$"]), header_regex("User-Agent", &[".*Mobile.*"])];
    accepted(
        "ModifyRule to other regex conditions",
        alb.c().modify_rule().rule_arn(&rule).set_conditions(Some(modified.clone())).send().await,
    );
    assert_eq!(alb.described(&rule).await.conditions(), modified.as_slice());

    // The listener's default rule is untouched: no conditions, still forwarding to the target group.
    let rules = alb.c().describe_rules().listener_arn(&alb.listener).send().await.unwrap();
    let default = rules.rules().iter().find(|r| r.is_default() == Some(true)).unwrap();
    assert!(default.conditions().is_empty());
    assert_eq!(default.actions()[0].target_group_arn(), Some(alb.tg.as_str()));
}

#[tokio::test]
async fn values_and_regex_values_cannot_be_mixed_and_regexes_lack_some_features() {
    let alb = Alb::new("emu-regex-mix").await;
    let mixed_host = HostHeaderConditionConfig::builder().values("a.example.com").regex_values("^b\\.example\\.com$").build();
    let mixed_path = PathPatternConditionConfig::builder().values("/a").regex_values("^/b$").build();
    let mixed_header = HttpHeaderConditionConfig::builder().http_header_name("X-Env").values("dev").regex_values("^prod$").build();
    let cases = [
        ("a host-header with Values and RegexValues", RuleCondition::builder().field("host-header").host_header_config(mixed_host).build()),
        (
            "a path-pattern with Values and RegexValues",
            RuleCondition::builder().field("path-pattern").path_pattern_config(mixed_path).build(),
        ),
        (
            "an http-header with Values and RegexValues",
            RuleCondition::builder().field("http-header").http_header_config(mixed_header).build(),
        ),
        ("a lookahead", path_regex(&["^/(?!admin).*$"])),
        ("a backreference", host_regex(&["^(a+)\\.\\1\\.example\\.com$"])),
        ("a possessive quantifier", header_regex("X-Env", &["^a++$"])),
        ("a Unicode character class", path_regex(&["^/\\p{L}+$"])),
    ];
    for (what, condition) in cases {
        assert_eq!(refused(&format!("CreateRule with {what}"), alb.create_rule(1, vec![condition]).await), "ValidationError");
    }
    assert!(alb.priorities().await.is_empty(), "no rule was created");

    let rule = alb.rule(1, vec![path_regex(&["^/a$"])]).await;
    let mixed = RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(PathPatternConditionConfig::builder().values("/a").regex_values("^/b$").build())
        .build();
    let out = alb.c().modify_rule().rule_arn(&rule).conditions(mixed).send().await;
    assert_eq!(refused("ModifyRule to a condition with Values and RegexValues", out), "ValidationError");
    assert_eq!(alb.described(&rule).await.conditions(), [path_regex(&["^/a$"])].as_slice(), "the rule is unchanged");
}

#[tokio::test]
async fn transforms_are_stored_returned_replaced_and_reset() {
    let alb = Alb::new("emu-transforms").await;
    let both = vec![url_rewrite("^/api/(.*)$", "/$1"), host_rewrite(".*", "backend.example.com")];
    let created = alb.create_rule_with_transforms(1, vec![path(&["/api/*"])], both.clone()).await;
    let created = accepted("CreateRule with two transforms", created);
    assert_eq!(created.rules()[0].transforms(), both.as_slice(), "CreateRule answers the transforms");
    let rule = created.rules()[0].rule_arn().unwrap().to_string();
    assert_eq!(alb.described(&rule).await.transforms(), both.as_slice(), "DescribeRules returns them");
    let plain = alb.rule(2, vec![path(&["/plain"])]).await;
    assert!(alb.described(&plain).await.transforms().is_empty(), "a rule without transforms has none");

    // SetRulePriorities answers the rules with their transforms (a swap of the two).
    let out = alb.c().set_rule_priorities().rule_priorities(pair(&rule, 2)).rule_priorities(pair(&plain, 1)).send().await;
    let out = accepted("SetRulePriorities swapping a rule with transforms", out);
    let answered = out.rules().iter().find(|r| r.rule_arn() == Some(rule.as_str())).unwrap();
    assert_eq!((answered.priority(), answered.transforms()), (Some("2"), both.as_slice()));

    // Conditions only: the transforms stay ("Any properties that you do not specify are unchanged").
    accepted("ModifyRule of the conditions", alb.c().modify_rule().rule_arn(&rule).conditions(path(&["/v1/*"])).send().await);
    assert_eq!(alb.described(&rule).await.transforms(), both.as_slice());

    // Transforms replace the list.
    let one = vec![url_rewrite("^/v1/(.*)$", "/v2/$1")];
    let out = alb.c().modify_rule().rule_arn(&rule).conditions(path(&["/v1/*"])).set_transforms(Some(one.clone())).send().await;
    assert_eq!(accepted("ModifyRule with one transform", out).rules()[0].transforms(), one.as_slice());
    assert_eq!(alb.described(&rule).await.transforms(), one.as_slice());

    // ResetTransforms removes them; the conditions are left as they were.
    let out = alb.c().modify_rule().rule_arn(&rule).actions(forward(&alb.tg)).reset_transforms(true).send().await;
    assert!(accepted("ModifyRule with ResetTransforms", out).rules()[0].transforms().is_empty());
    let described = alb.described(&rule).await;
    assert!(described.transforms().is_empty());
    assert_eq!(described.conditions(), [path(&["/v1/*"])].as_slice());

    // Transforms alone, without conditions or actions, are a valid ModifyRule too.
    let host = vec![host_rewrite("^(.+)\\.example\\.com$", "$1.example.org")];
    accepted("ModifyRule with transforms only", alb.c().modify_rule().rule_arn(&plain).set_transforms(Some(host.clone())).send().await);
    assert_eq!(alb.described(&plain).await.transforms(), host.as_slice());
}

#[tokio::test]
async fn bad_transforms_are_refused_and_change_nothing() {
    let alb = Alb::new("emu-bad-transforms").await;
    let url_config = |rewrites: Vec<RewriteConfig>| UrlRewriteConfig::builder().set_rewrites(Some(rewrites)).build();
    let typed = |kind: &str| RuleTransform::builder().r#type(TransformTypeEnum::from(kind));
    let cases = [
        ("two url-rewrite transforms", vec![url_rewrite("^/a", "/b"), url_rewrite("^/c", "/d")]),
        ("a url-rewrite without its config", vec![typed("url-rewrite").build()]),
        (
            "a url-rewrite with a host header config",
            vec![
                typed("url-rewrite")
                    .url_rewrite_config(url_config(vec![rewrite("^/a", "/b")]))
                    .host_header_rewrite_config(HostHeaderRewriteConfig::builder().rewrites(rewrite(".*", "x.example.com")).build())
                    .build(),
            ],
        ),
        ("a transform of an unknown type", vec![typed("path-rewrite").url_rewrite_config(url_config(vec![rewrite("^/a", "/b")])).build()]),
        ("a url-rewrite without rewrites", vec![typed("url-rewrite").url_rewrite_config(url_config(vec![])).build()]),
        (
            "a url-rewrite with two rewrites",
            vec![typed("url-rewrite").url_rewrite_config(url_config(vec![rewrite("^/a", "/b"), rewrite("^/c", "/d")])).build()],
        ),
        (
            "a rewrite without a regex",
            vec![typed("url-rewrite").url_rewrite_config(url_config(vec![RewriteConfig::builder().replace("/b").build()])).build()],
        ),
        ("a 1025-character regex", vec![url_rewrite(&format!("^/{}", "a".repeat(1023)), "/b")]),
        ("a 1025-character replacement", vec![url_rewrite("^/a", &format!("/{}", "b".repeat(1024)))]),
        ("a lookbehind in the regex", vec![url_rewrite("(?<=/api)/(.*)", "/$1")]),
    ];
    for (what, transforms) in cases {
        let out = alb.create_rule_with_transforms(1, vec![path(&["/a"])], transforms).await;
        assert_eq!(refused(&format!("CreateRule with {what}"), out), "ValidationError");
    }
    assert!(alb.priorities().await.is_empty(), "no rule was created");
    // The limits themselves are fine.
    alb.rule_with_transforms(
        1,
        vec![path(&["/a"])],
        vec![url_rewrite(&format!("^/{}", "a".repeat(1022)), &format!("/{}", "b".repeat(1023)))],
    )
    .await;

    let kept = vec![url_rewrite("^/old/(.*)$", "/new/$1")];
    let rule = alb.rule_with_transforms(2, vec![path(&["/old/*"])], kept.clone()).await;
    let out = alb
        .c()
        .modify_rule()
        .rule_arn(&rule)
        .conditions(path(&["/changed/*"]))
        .transforms(url_rewrite("^/a", "/b"))
        .transforms(url_rewrite("^/c", "/d"))
        .send()
        .await;
    assert_eq!(refused("ModifyRule with two url-rewrite transforms", out), "ValidationError");
    let out =
        alb.c().modify_rule().rule_arn(&rule).conditions(path(&["/changed/*"])).transforms(url_rewrite("^/a", "/b")).reset_transforms(true);
    assert_eq!(refused("ModifyRule with Transforms and ResetTransforms", out.send().await), "ValidationError");
    let described = alb.described(&rule).await;
    assert_eq!((described.conditions(), described.transforms()), ([path(&["/old/*"])].as_slice(), kept.as_slice()), "nothing changed");

    let rules = alb.c().describe_rules().listener_arn(&alb.listener).send().await.unwrap();
    let default = rules.rules().iter().find(|r| r.is_default() == Some(true)).unwrap().rule_arn().unwrap().to_string();
    let out = alb.c().modify_rule().rule_arn(&default).transforms(url_rewrite("^/a", "/b")).send().await;
    assert_eq!(refused("ModifyRule adding a transform to the default rule", out), "OperationNotPermitted");
    assert!(alb.described(&default).await.transforms().is_empty());
}
