//! Listener rules, updated in place: a rule whose content is unchanged keeps its ARN
//! (moved with SetRulePriorities if needed), a changed rule is modified with ModifyRule,
//! so no request ever meets a missing rule.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{
    Action as SdkAction, ActionTypeEnum, AuthenticateCognitoActionConditionalBehaviorEnum, AuthenticateCognitoActionConfig,
    AuthenticateOidcActionConditionalBehaviorEnum, AuthenticateOidcActionConfig, FixedResponseActionConfig, ForwardActionConfig,
    HostHeaderConditionConfig, HostHeaderRewriteConfig, HttpHeaderConditionConfig, HttpRequestMethodConditionConfig,
    PathPatternConditionConfig, QueryStringConditionConfig, QueryStringKeyValuePair, RedirectActionConfig, RedirectActionStatusCodeEnum,
    RewriteConfig, Rule as SdkRule, RuleCondition, RulePriorityPair, RuleTransform, SourceIpConditionConfig, TargetGroupStickinessConfig,
    TargetGroupTuple, TransformTypeEnum, UrlRewriteConfig,
};

use super::{Error, elbv2_tags};
use crate::aws::{Aws, paginate};
use crate::model::{Action, AuthSession, Authenticate, Condition, ObjKey, Problem, Rule, Transform, WeightedTargetGroup};

const ELBV2: &str = "elasticloadbalancingv2";

#[derive(Clone, Debug, PartialEq)]
pub struct ActualRule {
    pub arn: String,
    pub priority: i32,
    /// `None` when the rule holds something we never write (edited by hand): it then
    /// never equals a desired rule and gets rewritten.
    pub conditions: Option<Vec<Condition>>,
    pub auth: Option<Authenticate>,
    pub action: Option<Action>,
    /// Sorted; `None` when a transform is one we never write.
    pub transforms: Option<Vec<Transform>>,
}

impl ActualRule {
    fn same_content(&self, d: &Rule) -> bool {
        self.conditions.as_ref() == Some(&normalized(&d.conditions))
            && self.auth == d.auth.as_ref().map(without_secret)
            && self.action.as_ref().is_some_and(|a| same_action(a, &d.action))
            && self.transforms.as_ref() == Some(&sorted_transforms(&d.transforms))
    }
}

fn sorted_transforms(t: &[Transform]) -> Vec<Transform> {
    let mut t = t.to_vec();
    t.sort();
    t
}

fn transform_to_sdk(t: &Transform) -> RuleTransform {
    let rewrite = |regex: &str, replace: &str| RewriteConfig::builder().regex(regex).replace(replace).build();
    match t {
        Transform::HostHeaderRewrite { regex, replace } => RuleTransform::builder()
            .r#type(TransformTypeEnum::HostHeaderRewrite)
            .host_header_rewrite_config(HostHeaderRewriteConfig::builder().rewrites(rewrite(regex, replace)).build())
            .build(),
        Transform::UrlRewrite { regex, replace } => RuleTransform::builder()
            .r#type(TransformTypeEnum::UrlRewrite)
            .url_rewrite_config(UrlRewriteConfig::builder().rewrites(rewrite(regex, replace)).build())
            .build(),
    }
}

/// `None` for a transform we would not write (another type, several rewrites).
fn transforms_from_sdk(transforms: &[RuleTransform]) -> Option<Vec<Transform>> {
    let mut out = Vec::new();
    for t in transforms {
        let rewrites = match t.r#type()? {
            TransformTypeEnum::HostHeaderRewrite => t.host_header_rewrite_config()?.rewrites(),
            TransformTypeEnum::UrlRewrite => t.url_rewrite_config()?.rewrites(),
            _ => return None,
        };
        let [one] = rewrites else { return None };
        let (regex, replace) = (one.regex()?.to_string(), one.replace()?.to_string());
        out.push(match t.r#type()? {
            TransformTypeEnum::HostHeaderRewrite => Transform::HostHeaderRewrite { regex, replace },
            _ => Transform::UrlRewrite { regex, replace },
        });
    }
    out.sort();
    Some(out)
}

/// Whether two actions do the same, whoever wrote them: LBC and the console write some
/// parts differently from us (a lone target group with a weight, redirect parts as their
/// `#{…}` placeholders, an empty content type or body), and AWS describes them back so.
pub fn same_action(a: &Action, b: &Action) -> bool {
    canonical(a) == canonical(b)
}

fn canonical(a: &Action) -> Action {
    let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    match a {
        Action::FixedResponse { status_code, content_type, message_body } => Action::FixedResponse {
            status_code: status_code.clone(),
            content_type: non_empty(content_type),
            message_body: non_empty(message_body),
        },
        Action::Forward { target_groups, stickiness_seconds } => {
            let mut target_groups = target_groups.clone();
            target_groups.sort_by(|x, y| x.target_group.cmp(&y.target_group));
            // A lone target group gets every request whatever its weight.
            if let [one] = target_groups.as_mut_slice() {
                one.weight = None;
            }
            Action::Forward { target_groups, stickiness_seconds: *stickiness_seconds }
        }
        Action::Redirect { protocol, port, host, path, query, status_code } => {
            // An omitted part keeps the request's: the same as its placeholder.
            let part = |v: &Option<String>, placeholder: &str| non_empty(v).filter(|v| v != placeholder);
            Action::Redirect {
                protocol: part(protocol, "#{protocol}"),
                port: part(port, "#{port}"),
                host: part(host, "#{host}"),
                path: part(path, "/#{path}"),
                query: part(query, "#{query}"),
                status_code: status_code.clone(),
            }
        }
    }
}

/// AWS never describes an OIDC client secret back, so rules are compared without it.
fn without_secret(a: &Authenticate) -> Authenticate {
    match a {
        Authenticate::Oidc { .. } => {
            let mut a = a.clone();
            if let Authenticate::Oidc { client_secret, .. } = &mut a {
                client_secret.clear();
            }
            a
        }
        other => other.clone(),
    }
}

fn on_unauthenticated(v: &str) -> AuthenticateOidcActionConditionalBehaviorEnum {
    AuthenticateOidcActionConditionalBehaviorEnum::from(v)
}

fn auth_to_sdk(a: &Authenticate) -> SdkAction {
    match a {
        Authenticate::Oidc { issuer, authorization_endpoint, token_endpoint, user_info_endpoint, client_id, client_secret, session } => {
            SdkAction::builder()
                .r#type(ActionTypeEnum::AuthenticateOidc)
                .order(1)
                .authenticate_oidc_config(
                    AuthenticateOidcActionConfig::builder()
                        .issuer(issuer)
                        .authorization_endpoint(authorization_endpoint)
                        .token_endpoint(token_endpoint)
                        .user_info_endpoint(user_info_endpoint)
                        .client_id(client_id)
                        .client_secret(client_secret)
                        .scope(&session.scope)
                        .session_cookie_name(&session.session_cookie_name)
                        .session_timeout(session.session_timeout)
                        .on_unauthenticated_request(on_unauthenticated(&session.on_unauthenticated_request))
                        .set_authentication_request_extra_params(
                            (!session.extra_params.is_empty()).then(|| session.extra_params.clone().into_iter().collect()),
                        )
                        .build(),
                )
                .build()
        }
        Authenticate::Cognito { user_pool_arn, user_pool_client_id, user_pool_domain, session } => SdkAction::builder()
            .r#type(ActionTypeEnum::AuthenticateCognito)
            .order(1)
            .authenticate_cognito_config(
                AuthenticateCognitoActionConfig::builder()
                    .user_pool_arn(user_pool_arn)
                    .user_pool_client_id(user_pool_client_id)
                    .user_pool_domain(user_pool_domain)
                    .scope(&session.scope)
                    .session_cookie_name(&session.session_cookie_name)
                    .session_timeout(session.session_timeout)
                    .on_unauthenticated_request(AuthenticateCognitoActionConditionalBehaviorEnum::from(
                        session.on_unauthenticated_request.as_str(),
                    ))
                    .set_authentication_request_extra_params(
                        (!session.extra_params.is_empty()).then(|| session.extra_params.clone().into_iter().collect()),
                    )
                    .build(),
            )
            .build(),
    }
}

fn auth_from_sdk(a: &SdkAction) -> Option<Authenticate> {
    let session = |scope: Option<&str>,
                   cookie: Option<&str>,
                   timeout: Option<i64>,
                   on: Option<&str>,
                   extra: Option<&std::collections::HashMap<String, String>>| {
        AuthSession {
            scope: scope.unwrap_or("openid").to_string(),
            session_cookie_name: cookie.unwrap_or("AWSELBAuthSessionCookie").to_string(),
            session_timeout: timeout.unwrap_or(604800),
            on_unauthenticated_request: on.unwrap_or("authenticate").to_string(),
            extra_params: extra.map(|e| e.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default(),
        }
    };
    match a.r#type()? {
        ActionTypeEnum::AuthenticateOidc => {
            let c = a.authenticate_oidc_config()?;
            Some(Authenticate::Oidc {
                issuer: c.issuer()?.to_string(),
                authorization_endpoint: c.authorization_endpoint()?.to_string(),
                token_endpoint: c.token_endpoint()?.to_string(),
                user_info_endpoint: c.user_info_endpoint()?.to_string(),
                client_id: c.client_id()?.to_string(),
                client_secret: String::new(),
                session: session(
                    c.scope(),
                    c.session_cookie_name(),
                    c.session_timeout(),
                    c.on_unauthenticated_request().map(|o| o.as_str()),
                    c.authentication_request_extra_params(),
                ),
            })
        }
        ActionTypeEnum::AuthenticateCognito => {
            let c = a.authenticate_cognito_config()?;
            Some(Authenticate::Cognito {
                user_pool_arn: c.user_pool_arn()?.to_string(),
                user_pool_client_id: c.user_pool_client_id()?.to_string(),
                user_pool_domain: c.user_pool_domain()?.to_string(),
                session: session(
                    c.scope(),
                    c.session_cookie_name(),
                    c.session_timeout(),
                    c.on_unauthenticated_request().map(|o| o.as_str()),
                    c.authentication_request_extra_params(),
                ),
            })
        }
        _ => None,
    }
}

/// A rule's actions: the authentication (if any) first, then its action.
fn rule_actions_to_sdk(auth: Option<&Authenticate>, action: &Action) -> Vec<SdkAction> {
    match auth {
        Some(a) => {
            let mut main = action_to_sdk(action);
            main.order = Some(2);
            vec![auth_to_sdk(a), main]
        }
        None => vec![action_to_sdk(action)],
    }
}

/// (authentication, action) of a described rule; `None` action when it is not one we write.
fn rule_actions_from_sdk(actions: &[SdkAction]) -> (Option<Authenticate>, Option<Action>) {
    let mut sorted: Vec<&SdkAction> = actions.iter().collect();
    sorted.sort_by_key(|a| a.order().unwrap_or(0));
    match sorted.as_slice() {
        [auth, main] => match auth_from_sdk(auth) {
            Some(a) => (Some(a), action_from_sdk(std::slice::from_ref(*main))),
            None => (None, None),
        },
        _ => (None, action_from_sdk(actions)),
    }
}

/// Conditions in a form that compares equal when AWS matches the same requests: values
/// sorted, and lowercased where AWS compares without case (host names, HTTP header names
/// and values, query strings; paths and methods keep their case).
fn normalized(conditions: &[Condition]) -> Vec<Condition> {
    let lower = |v: &[String]| sorted(&v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>());
    let mut c: Vec<Condition> = conditions
        .iter()
        .map(|c| match c {
            Condition::HostHeader(v) => Condition::HostHeader(lower(v)),
            Condition::PathPattern(v) => Condition::PathPattern(sorted(v)),
            Condition::PathRegex(v) => Condition::PathRegex(sorted(v)),
            Condition::HttpHeader { name, values } => Condition::HttpHeader { name: name.to_lowercase(), values: lower(values) },
            // A regular expression keeps its case: it decides itself what it matches.
            Condition::HttpHeaderRegex { name, values } => Condition::HttpHeaderRegex { name: name.to_lowercase(), values: sorted(values) },
            Condition::HttpRequestMethod(v) => Condition::HttpRequestMethod(sorted(v)),
            Condition::QueryString(v) => {
                let mut v: Vec<_> = v.iter().map(|(k, val)| (k.as_ref().map(|k| k.to_lowercase()), val.to_lowercase())).collect();
                v.sort();
                Condition::QueryString(v)
            }
            Condition::SourceIp(v) => Condition::SourceIp(sorted(v)),
        })
        .collect();
    c.sort();
    c
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

pub fn action_to_sdk(a: &Action) -> SdkAction {
    match a {
        Action::FixedResponse { status_code, content_type, message_body } => SdkAction::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code(status_code)
                    .set_content_type(content_type.clone())
                    .set_message_body(message_body.clone())
                    .build(),
            )
            .build(),
        Action::Forward { target_groups, stickiness_seconds } => match (target_groups.as_slice(), stickiness_seconds) {
            ([one], None) if one.weight.is_none() => {
                SdkAction::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&one.target_group).build()
            }
            _ => SdkAction::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(
                    ForwardActionConfig::builder()
                        .set_target_groups(Some(
                            target_groups
                                .iter()
                                .map(|t| TargetGroupTuple::builder().target_group_arn(&t.target_group).set_weight(t.weight).build())
                                .collect(),
                        ))
                        .set_target_group_stickiness_config(
                            stickiness_seconds.map(|s| TargetGroupStickinessConfig::builder().enabled(true).duration_seconds(s).build()),
                        )
                        .build(),
                )
                .build(),
        },
        Action::Redirect { protocol, port, host, path, query, status_code } => SdkAction::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .set_protocol(protocol.clone())
                    .set_port(port.clone())
                    .set_host(host.clone())
                    .set_path(path.clone())
                    .set_query(query.clone())
                    .status_code(RedirectActionStatusCodeEnum::from(status_code.as_str()))
                    .build(),
            )
            .build(),
    }
}

pub fn action_from_sdk(actions: &[SdkAction]) -> Option<Action> {
    let [a] = actions else { return None };
    match a.r#type()? {
        ActionTypeEnum::FixedResponse => {
            let c = a.fixed_response_config()?;
            Some(Action::FixedResponse {
                status_code: c.status_code()?.to_string(),
                content_type: c.content_type().map(str::to_string),
                message_body: c.message_body().filter(|b| !b.is_empty()).map(str::to_string),
            })
        }
        ActionTypeEnum::Redirect => {
            let c = a.redirect_config()?;
            // AWS reports omitted parts as their `#{…}` placeholders.
            let part = |v: Option<&str>, placeholder: &str| v.filter(|v| *v != placeholder).map(str::to_string);
            Some(Action::Redirect {
                protocol: part(c.protocol(), "#{protocol}"),
                port: part(c.port(), "#{port}"),
                host: part(c.host(), "#{host}"),
                path: part(c.path(), "/#{path}"),
                query: part(c.query(), "#{query}"),
                status_code: c.status_code()?.as_str().to_string(),
            })
        }
        ActionTypeEnum::Forward => {
            let config = a.forward_config();
            let stickiness_seconds = config
                .and_then(|c| c.target_group_stickiness_config())
                .filter(|s| s.enabled() == Some(true))
                .map(|s| s.duration_seconds().unwrap_or_default());
            let tuples = config.map(|c| c.target_groups()).unwrap_or_default();
            let mut target_groups: Vec<WeightedTargetGroup> = if tuples.is_empty() {
                vec![WeightedTargetGroup { target_group: a.target_group_arn()?.to_string(), weight: None }]
            } else {
                tuples
                    .iter()
                    .map(|t| Some(WeightedTargetGroup { target_group: t.target_group_arn()?.to_string(), weight: t.weight() }))
                    .collect::<Option<_>>()?
            };
            // AWS reports a lone target group with weight 1; we write it without one.
            if let [one] = target_groups.as_mut_slice()
                && stickiness_seconds.is_none()
            {
                one.weight = None;
            }
            Some(Action::Forward { target_groups, stickiness_seconds })
        }
        _ => None,
    }
}

fn condition_to_sdk(c: &Condition) -> RuleCondition {
    match c {
        Condition::PathRegex(v) => RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(PathPatternConditionConfig::builder().set_regex_values(Some(v.clone())).build())
            .build(),
        Condition::HttpHeader { name, values } => RuleCondition::builder()
            .field("http-header")
            .http_header_config(HttpHeaderConditionConfig::builder().http_header_name(name).set_values(Some(values.clone())).build())
            .build(),
        Condition::HttpHeaderRegex { name, values } => RuleCondition::builder()
            .field("http-header")
            .http_header_config(HttpHeaderConditionConfig::builder().http_header_name(name).set_regex_values(Some(values.clone())).build())
            .build(),
        Condition::HttpRequestMethod(v) => RuleCondition::builder()
            .field("http-request-method")
            .http_request_method_config(HttpRequestMethodConditionConfig::builder().set_values(Some(v.clone())).build())
            .build(),
        Condition::QueryString(v) => RuleCondition::builder()
            .field("query-string")
            .query_string_config(
                QueryStringConditionConfig::builder()
                    .set_values(Some(
                        v.iter().map(|(k, val)| QueryStringKeyValuePair::builder().set_key(k.clone()).value(val).build()).collect(),
                    ))
                    .build(),
            )
            .build(),
        Condition::SourceIp(v) => RuleCondition::builder()
            .field("source-ip")
            .source_ip_config(SourceIpConditionConfig::builder().set_values(Some(v.clone())).build())
            .build(),
        Condition::HostHeader(v) => RuleCondition::builder()
            .field("host-header")
            .host_header_config(HostHeaderConditionConfig::builder().set_values(Some(v.clone())).build())
            .build(),
        Condition::PathPattern(v) => RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(PathPatternConditionConfig::builder().set_values(Some(v.clone())).build())
            .build(),
    }
}

fn conditions_from_sdk(conditions: &[RuleCondition]) -> Option<Vec<Condition>> {
    let mut out = Vec::new();
    for c in conditions {
        let values = |cfg: Option<&[String]>| -> Vec<String> {
            match cfg {
                Some(v) if !v.is_empty() => v.to_vec(),
                _ => c.values().to_vec(),
            }
        };
        out.push(match c.field()? {
            "host-header" => Condition::HostHeader(values(c.host_header_config().map(|h| h.values()))),
            "path-pattern" if c.path_pattern_config().is_some_and(|p| !p.regex_values().is_empty()) => {
                Condition::PathRegex(c.path_pattern_config().map(|p| p.regex_values().to_vec()).unwrap_or_default())
            }
            "path-pattern" => Condition::PathPattern(values(c.path_pattern_config().map(|p| p.values()))),
            "http-header" => {
                let h = c.http_header_config()?;
                let name = h.http_header_name()?.to_string();
                if h.regex_values().is_empty() {
                    Condition::HttpHeader { name, values: h.values().to_vec() }
                } else {
                    Condition::HttpHeaderRegex { name, values: h.regex_values().to_vec() }
                }
            }
            "http-request-method" => Condition::HttpRequestMethod(values(c.http_request_method_config().map(|m| m.values()))),
            "query-string" => Condition::QueryString(
                c.query_string_config()?
                    .values()
                    .iter()
                    .map(|kv| (kv.key().map(str::to_string), kv.value().unwrap_or_default().to_string()))
                    .collect(),
            ),
            "source-ip" => Condition::SourceIp(values(c.source_ip_config().map(|s| s.values()))),
            _ => return None,
        });
    }
    Some(normalized(&out))
}

fn from_sdk(r: &SdkRule) -> Option<ActualRule> {
    Some(ActualRule {
        arn: r.rule_arn()?.to_string(),
        priority: r.priority()?.parse().ok()?,
        conditions: conditions_from_sdk(r.conditions()),
        auth: rule_actions_from_sdk(r.actions()).0,
        action: rule_actions_from_sdk(r.actions()).1,
        transforms: transforms_from_sdk(r.transforms()),
    })
}

/// The non-default rules of a listener.
pub async fn read(aws: &Aws, listener_arn: &str) -> Result<Vec<ActualRule>, Error> {
    let rules = paginate(|marker| async move {
        let out = aws
            .call(ELBV2, "DescribeRules", || aws.elbv2.describe_rules().listener_arn(listener_arn).set_marker(marker.clone()).send())
            .await?;
        Ok((out.rules.unwrap_or_default(), out.next_marker))
    })
    .await?;
    Ok(rules.iter().filter(|r| !r.is_default().unwrap_or(false)).filter_map(from_sdk).collect())
}

/// The calls that turn `actual` into `desired`.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub delete: Vec<String>,
    /// (rule ARN, new priority), applied in one SetRulePriorities call.
    pub reprioritize: Vec<(String, i32)>,
    /// (rule ARN, index of the desired rule whose content it takes).
    pub modify: Vec<(String, usize)>,
    /// Indexes of desired rules to create.
    pub create: Vec<usize>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.reprioritize.is_empty() && self.modify.is_empty() && self.create.is_empty()
    }
}

/// Pairs desired rules with existing ones: same content first (same priority preferred),
/// then the rest in priority order to be modified in place; leftovers are created or deleted.
pub fn plan(actual: &[ActualRule], desired: &[Rule]) -> Plan {
    let mut pair: Vec<Option<usize>> = vec![None; desired.len()];
    let mut used = vec![false; actual.len()];
    for same_priority in [true, false] {
        for (di, d) in desired.iter().enumerate() {
            if pair[di].is_some() {
                continue;
            }
            if let Some(ai) = (0..actual.len())
                .find(|&ai| !used[ai] && actual[ai].same_content(d) && (!same_priority || actual[ai].priority == d.priority))
            {
                pair[di] = Some(ai);
                used[ai] = true;
            }
        }
    }
    let mut spare: Vec<usize> = (0..actual.len()).filter(|&ai| !used[ai]).collect();
    spare.sort_by_key(|&ai| actual[ai].priority);
    let mut spare = spare.into_iter();
    let mut plan = Plan::default();
    for (di, d) in desired.iter().enumerate() {
        let ai = match pair[di] {
            Some(ai) => ai,
            None => match spare.next() {
                Some(ai) => {
                    plan.modify.push((actual[ai].arn.clone(), di));
                    ai
                }
                None => {
                    plan.create.push(di);
                    continue;
                }
            },
        };
        if actual[ai].priority != d.priority {
            plan.reprioritize.push((actual[ai].arn.clone(), d.priority));
        }
    }
    plan.delete = spare.map(|ai| actual[ai].arn.clone()).collect();
    plan
}

/// AWS error codes that refuse what one rule holds (API reference, CreateRule and
/// ModifyRule errors): the member the rule comes from is at fault, not the group.
const REFUSES_THE_RULE: &[&str] = &[
    "ValidationError",
    "InvalidConfigurationRequest",
    "InvalidLoadBalancerAction",
    "TargetGroupNotFound",
    "TooManyActions",
    "TooManyUniqueTargetGroupsPerLoadBalancer",
    "TargetGroupAssociationLimit",
    "IncompatibleProtocols",
];

/// An error of CreateRule or ModifyRule for `d`: a refusal of its content is that
/// member's, anything else the group's.
fn rule_error(d: &Rule, e: crate::aws::Error) -> Error {
    if e.is_code(REFUSES_THE_RULE) { Error::RuleRefused { ingress: d.from.clone(), source: e } } else { e.into() }
}

/// Single moves (rule ARN, priority) that bring every rule of `moves` to its priority
/// without two rules ever sharing one, for when AWS refuses them as one
/// SetRulePriorities call: a rule moves once its priority is free; a cycle (a swap) is
/// broken by parking one of its rules above every priority in use first. `current` is
/// every rule of the listener with its priority now.
fn one_at_a_time(current: &BTreeMap<String, i32>, moves: &[(String, i32)]) -> Vec<(String, i32)> {
    let mut at = current.clone();
    let mut pending = moves.to_vec();
    let mut out = Vec::new();
    let holder = |at: &BTreeMap<String, i32>, p: i32| at.iter().find(|(_, q)| **q == p).map(|(arn, _)| arn.clone());
    while !pending.is_empty() {
        if let Some(i) = pending.iter().position(|(_, p)| holder(&at, *p).is_none()) {
            let (arn, p) = pending.remove(i);
            at.insert(arn.clone(), p);
            out.push((arn, p));
            continue;
        }
        // Every wanted priority is held. Park a rule that holds one and moves itself.
        let parked = pending.iter().find_map(|(_, p)| holder(&at, *p).filter(|h| pending.iter().any(|(arn, _)| arn == h)));
        let Some(arn) = parked else {
            // Held by a rule that is not moving: nothing we can free; AWS will say why.
            out.append(&mut pending);
            break;
        };
        let above = at.values().chain(pending.iter().map(|(_, p)| p)).copied().max().unwrap_or(0) + 1;
        at.insert(arn.clone(), above);
        out.push((arn, above));
    }
    out
}

fn priority_pairs(moves: &[(String, i32)]) -> Vec<RulePriorityPair> {
    moves.iter().map(|(arn, p)| RulePriorityPair::builder().rule_arn(arn).priority(*p).build()).collect()
}

/// Moves rules to new priorities: in one SetRulePriorities call, as LBC does and AWS
/// applies as a whole; if that is refused, one rule at a time through free priorities
/// (which cannot conflict), with a remark for the members whose rules moved, so that a
/// refused reordering never blocks the group's other changes.
async fn set_priorities(
    aws: &Aws,
    listener: &str,
    moves: &[(String, i32)],
    rules: &mut BTreeMap<String, ActualRule>,
    desired: &[Rule],
    remarks: &mut Vec<Problem>,
) -> Result<(), Error> {
    let pairs = priority_pairs(moves);
    let all_at_once =
        aws.call(ELBV2, "SetRulePriorities", || aws.elbv2.set_rule_priorities().set_rule_priorities(Some(pairs.clone())).send()).await;
    match all_at_once {
        Ok(_) => {}
        Err(e) if e.is_client_error() => {
            tracing::warn!(%listener, error = %crate::telemetry::Excerpt(&e), "SetRulePriorities refused the reordering as one call; moving the rules one at a time");
            let current: BTreeMap<String, i32> = rules.iter().map(|(arn, r)| (arn.clone(), r.priority)).collect();
            for step in one_at_a_time(&current, moves) {
                let pair = priority_pairs(std::slice::from_ref(&step));
                aws.call(ELBV2, "SetRulePriorities", || aws.elbv2.set_rule_priorities().set_rule_priorities(Some(pair.clone())).send())
                    .await?;
                if let Some(r) = rules.get_mut(&step.0) {
                    r.priority = step.1;
                }
            }
            let moved: BTreeSet<&ObjKey> =
                moves.iter().filter_map(|(_, p)| desired.iter().find(|d| d.priority == *p)).map(|d| &d.from).collect();
            let message = format!(
                "listener {listener}: AWS refused to reorder the rules in one SetRulePriorities call ({e}); they were moved one at a time instead"
            );
            remarks.extend(moved.into_iter().map(|ingress| Problem {
                ingress: ingress.clone(),
                reason: "RuleReorderFallback",
                message: message.clone(),
            }));
        }
        Err(e) => return Err(e.into()),
    }
    for (arn, p) in moves {
        if let Some(r) = rules.get_mut(arn) {
            r.priority = *p;
        }
    }
    Ok(())
}

/// Makes the listener's rules equal `desired` (actions already resolved to ARNs).
/// `listener` names it in messages (`HTTP:80`).
pub async fn sync(
    aws: &Aws,
    listener_arn: &str,
    listener: &str,
    desired: &[Rule],
    actual: &mut Vec<ActualRule>,
    remarks: &mut Vec<Problem>,
) -> Result<(), Error> {
    let plan = plan(actual, desired);
    if plan.is_empty() {
        return Ok(());
    }
    let mut by_arn: BTreeMap<String, ActualRule> = actual.drain(..).map(|r| (r.arn.clone(), r)).collect();
    for arn in &plan.delete {
        match aws.call(ELBV2, "DeleteRule", || aws.elbv2.delete_rule().rule_arn(arn).send()).await {
            Ok(_) => {}
            Err(e) if e.is_code(&["RuleNotFound"]) => {}
            Err(e) => return Err(e.into()),
        }
        by_arn.remove(arn);
    }
    if !plan.reprioritize.is_empty() {
        set_priorities(aws, listener, &plan.reprioritize, &mut by_arn, desired, remarks).await?;
    }
    for (arn, di) in &plan.modify {
        let d = &desired[*di];
        // No transforms wanted: reset only what the rule has (an empty list would keep them).
        let reset = d.transforms.is_empty() && by_arn.get(arn).is_none_or(|r| r.transforms.as_ref().is_none_or(|t| !t.is_empty()));
        aws.call(ELBV2, "ModifyRule", || {
            let call = aws
                .elbv2
                .modify_rule()
                .rule_arn(arn)
                .set_conditions(Some(d.conditions.iter().map(condition_to_sdk).collect()))
                .set_actions(Some(rule_actions_to_sdk(d.auth.as_ref(), &d.action)));
            if reset { call.reset_transforms(true) } else { call.set_transforms(Some(d.transforms.iter().map(transform_to_sdk).collect())) }
                .send()
        })
        .await
        .map_err(|e| rule_error(d, e))?;
        if let Some(r) = by_arn.get_mut(arn) {
            r.conditions = Some(normalized(&d.conditions));
            r.auth = d.auth.as_ref().map(without_secret);
            r.action = Some(d.action.clone());
            r.transforms = Some(sorted_transforms(&d.transforms));
        }
    }
    for &di in &plan.create {
        let created = create_or_adopt(aws, listener_arn, &desired[di]).await?;
        by_arn.insert(created.arn.clone(), created);
    }
    *actual = by_arn.into_values().collect();
    actual.sort_by_key(|r| r.priority);
    Ok(())
}

/// Creates the rule. CreateRule is not idempotent: after a lost reply the retry meets the
/// rule the first call made, as `PriorityInUse`. A rule at that priority with the desired
/// conditions and actions is that one, and is adopted; any other is a real conflict.
async fn create_or_adopt(aws: &Aws, listener_arn: &str, d: &Rule) -> Result<ActualRule, Error> {
    let created = aws
        .call(ELBV2, "CreateRule", || {
            aws.elbv2
                .create_rule()
                .listener_arn(listener_arn)
                .priority(d.priority)
                .set_conditions(Some(d.conditions.iter().map(condition_to_sdk).collect()))
                .set_actions(Some(rule_actions_to_sdk(d.auth.as_ref(), &d.action)))
                .set_transforms((!d.transforms.is_empty()).then(|| d.transforms.iter().map(transform_to_sdk).collect()))
                .set_tags(Some(elbv2_tags(&d.tags)))
                .send()
        })
        .await;
    match created {
        Ok(out) => Ok(ActualRule {
            arn: out.rules().first().and_then(|r| r.rule_arn()).unwrap_or_default().to_string(),
            priority: d.priority,
            conditions: Some(normalized(&d.conditions)),
            auth: d.auth.as_ref().map(without_secret),
            action: Some(d.action.clone()),
            transforms: Some(sorted_transforms(&d.transforms)),
        }),
        Err(e) if e.is_code(&["PriorityInUse"]) => match read(aws, listener_arn).await?.into_iter().find(|r| r.priority == d.priority) {
            Some(found) if found.same_content(d) => {
                tracing::info!(arn = %found.arn, priority = d.priority, "adopted the rule an earlier create made (its reply was lost)");
                Ok(found)
            }
            _ => Err(rule_error(d, e)),
        },
        Err(e) => Err(rule_error(d, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tags;

    fn rule(priority: i32, path: &str, tg: &str) -> Rule {
        Rule {
            priority,
            from: ObjKey { namespace: "shop".into(), name: "shop".into() },
            conditions: vec![Condition::PathPattern(vec![path.into()])],
            auth: None,
            action: Action::forward(tg),
            transforms: Vec::new(),
            tags: Tags::new(),
        }
    }

    fn actual(arn: &str, r: &Rule) -> ActualRule {
        ActualRule {
            arn: arn.into(),
            priority: r.priority,
            conditions: Some(normalized(&r.conditions)),
            auth: r.auth.as_ref().map(without_secret),
            action: Some(r.action.clone()),
            transforms: Some(sorted_transforms(&r.transforms)),
        }
    }

    #[test]
    fn transforms_round_trip_and_count_in_the_content() {
        let t = vec![
            Transform::UrlRewrite { regex: "(^/api(/)?)".into(), replace: "/$2".into() },
            Transform::HostHeaderRewrite { regex: ".*".into(), replace: "internal.example.com".into() },
        ];
        let sdk: Vec<_> = t.iter().map(transform_to_sdk).collect();
        assert_eq!(transforms_from_sdk(&sdk), Some(sorted_transforms(&t)));
        let mut d = rule(1, "/a", "tg1");
        let before = actual("arn:1", &d);
        d.transforms = t;
        assert!(!before.same_content(&d), "a new transform is a change");
        assert!(actual("arn:1", &d).same_content(&d));
        let two = RuleTransform::builder()
            .r#type(TransformTypeEnum::UrlRewrite)
            .url_rewrite_config(
                UrlRewriteConfig::builder()
                    .rewrites(RewriteConfig::builder().regex("a").replace("b").build())
                    .rewrites(RewriteConfig::builder().regex("c").replace("d").build())
                    .build(),
            )
            .build();
        assert_eq!(transforms_from_sdk(&[two]), None, "one we never write");
    }

    #[test]
    fn unchanged_rules_need_no_call() {
        let d = vec![rule(1, "/a", "tg1"), rule(2, "/b", "tg2")];
        let a = vec![actual("r1", &d[0]), actual("r2", &d[1])];
        assert!(plan(&a, &d).is_empty());
    }

    #[test]
    fn an_edited_path_modifies_that_rule_only() {
        let before = [rule(1, "/a", "tg1"), rule(2, "/b", "tg2")];
        let a = vec![actual("r1", &before[0]), actual("r2", &before[1])];
        let d = vec![rule(1, "/a", "tg1"), rule(2, "/c", "tg2")];
        assert_eq!(plan(&a, &d), Plan { modify: vec![("r2".into(), 1)], ..Plan::default() });
    }

    #[test]
    fn an_inserted_rule_moves_the_others_without_recreating_them() {
        let before = [rule(1, "/a", "tg1"), rule(2, "/b", "tg2")];
        let a = vec![actual("r1", &before[0]), actual("r2", &before[1])];
        let d = vec![rule(1, "/new", "tg3"), rule(2, "/a", "tg1"), rule(3, "/b", "tg2")];
        let p = plan(&a, &d);
        assert_eq!(p.reprioritize, vec![("r1".into(), 2), ("r2".into(), 3)]);
        assert_eq!(p.create, vec![0]);
        assert!(p.modify.is_empty() && p.delete.is_empty());
    }

    /// Applies single moves to `current`, asserting no two rules ever share a priority.
    fn replay(current: &BTreeMap<String, i32>, steps: &[(String, i32)]) -> BTreeMap<String, i32> {
        let mut at = current.clone();
        for (arn, p) in steps {
            assert!(!at.iter().any(|(other, q)| other != arn && q == p), "{arn} to {p} meets another rule: {steps:?}");
            at.insert(arn.clone(), *p);
        }
        at
    }

    #[test]
    fn a_swap_is_split_into_moves_that_never_conflict() {
        let current = BTreeMap::from([("r1".to_string(), 1), ("r2".to_string(), 2), ("r3".to_string(), 3)]);
        let swap = vec![("r1".to_string(), 2), ("r2".to_string(), 1)];
        let steps = one_at_a_time(&current, &swap);
        assert_eq!(steps.len(), 3, "park one, then two moves: {steps:?}");
        assert_eq!(steps[0].1, 4, "parked above every priority in use");
        assert_eq!(replay(&current, &steps), BTreeMap::from([("r1".to_string(), 2), ("r2".to_string(), 1), ("r3".to_string(), 3)]));
        // A shift down a chain needs no parking: each move frees the next.
        let shift = vec![("r1".to_string(), 2), ("r2".to_string(), 3), ("r3".to_string(), 4)];
        let steps = one_at_a_time(&current, &shift);
        assert_eq!(steps.len(), 3);
        assert_eq!(replay(&current, &steps).values().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
        // A rotation of three.
        let rotate = vec![("r1".to_string(), 2), ("r2".to_string(), 3), ("r3".to_string(), 1)];
        let steps = one_at_a_time(&current, &rotate);
        assert_eq!(replay(&current, &steps), BTreeMap::from([("r1".to_string(), 2), ("r2".to_string(), 3), ("r3".to_string(), 1)]));
    }

    #[test]
    fn a_refusal_of_what_a_rule_holds_is_its_members() {
        let api = |code: &str| crate::aws::Error::Api {
            service: ELBV2,
            operation: "CreateRule",
            outcome: crate::aws::Outcome::ClientError,
            code: Some(code.into()),
            message: "refused".into(),
        };
        let d = rule(1, "/a", "arn:tg");
        assert!(matches!(rule_error(&d, api("TargetGroupNotFound")), Error::RuleRefused { ingress, .. } if ingress == d.from));
        assert!(matches!(rule_error(&d, api("ValidationError")), Error::RuleRefused { .. }));
        assert!(matches!(rule_error(&d, api("ListenerNotFound")), Error::Aws(_)), "not the rule's fault");
    }

    #[test]
    fn a_priority_held_by_a_rule_that_does_not_move_is_left_to_aws() {
        let current = BTreeMap::from([("r1".to_string(), 1), ("r2".to_string(), 2)]);
        let steps = one_at_a_time(&current, &[("r1".to_string(), 2)]);
        assert_eq!(steps, vec![("r1".to_string(), 2)], "no endless parking");
    }

    #[test]
    fn removed_rules_are_deleted() {
        let before = [rule(1, "/a", "tg1"), rule(2, "/b", "tg2"), rule(3, "/c", "tg3")];
        let a: Vec<_> = before.iter().enumerate().map(|(i, r)| actual(&format!("r{i}"), r)).collect();
        let d = vec![rule(1, "/a", "tg1"), rule(2, "/c", "tg3")];
        let p = plan(&a, &d);
        assert_eq!(p.delete, vec!["r1".to_string()]);
        assert_eq!(p.reprioritize, vec![("r2".into(), 2)]);
        assert!(p.modify.is_empty() && p.create.is_empty());
    }

    #[test]
    fn hand_edited_rules_are_rewritten() {
        let d = vec![rule(1, "/a", "tg1")];
        let mut a = vec![actual("r1", &d[0])];
        a[0].conditions = None;
        assert_eq!(plan(&a, &d).modify, vec![("r1".into(), 0)]);
    }

    #[test]
    fn sdk_round_trip_of_actions_and_conditions() {
        let a = Action::fixed("503");
        assert_eq!(action_from_sdk(&[action_to_sdk(&a)]), Some(a));
        let f = Action::forward("arn:tg");
        assert_eq!(action_from_sdk(&[action_to_sdk(&f)]), Some(f));
        let w = Action::Forward {
            target_groups: vec![
                WeightedTargetGroup { target_group: "arn:a".into(), weight: Some(20) },
                WeightedTargetGroup { target_group: "arn:b".into(), weight: Some(80) },
            ],
            stickiness_seconds: Some(200),
        };
        assert_eq!(action_from_sdk(&[action_to_sdk(&w)]), Some(w));
        let r = Action::Redirect {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            host: None,
            path: None,
            query: None,
            status_code: "HTTP_301".into(),
        };
        assert_eq!(action_from_sdk(&[action_to_sdk(&r)]), Some(r.clone()));
        // What AWS answers for the same redirect, placeholders filled in.
        let described = SdkAction::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .host("#{host}")
                    .path("/#{path}")
                    .query("#{query}")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build();
        assert_eq!(action_from_sdk(&[described]), Some(r));
        let c = vec![
            Condition::PathPattern(vec!["/b".into(), "/a".into()]),
            Condition::HostHeader(vec!["x".into()]),
            Condition::HttpHeader { name: "X-Env".into(), values: vec!["canary".into()] },
            Condition::HttpRequestMethod(vec!["GET".into()]),
            Condition::QueryString(vec![(Some("v".into()), "2".into()), (None, "debug".into())]),
            Condition::SourceIp(vec!["10.0.0.0/8".into()]),
            Condition::PathRegex(vec!["^/api/v[0-9]+/.*$".into()]),
            Condition::HttpHeaderRegex { name: "X-Tier".into(), values: vec!["^Gold-[0-9]+$".into()] },
        ];
        let sdk: Vec<_> = c.iter().map(condition_to_sdk).collect();
        assert_eq!(conditions_from_sdk(&sdk), Some(normalized(&c)));
    }

    #[test]
    fn what_lbc_writes_equals_what_we_write() {
        let tuple = |arn: &str, weight: Option<i32>| TargetGroupTuple::builder().target_group_arn(arn).set_weight(weight).build();
        // LBC: a ForwardConfig with one target group (AWS describes it with weight 1,
        // stickiness off, and the TargetGroupArn filled in), the action with an Order.
        let lbc_forward = SdkAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .order(1)
            .target_group_arn("arn:tg")
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(tuple("arn:tg", Some(1)))
                    .target_group_stickiness_config(TargetGroupStickinessConfig::builder().enabled(false).build())
                    .build(),
            )
            .build();
        let (auth, action) = rule_actions_from_sdk(&[lbc_forward]);
        assert_eq!((auth, action), (None, Some(Action::forward("arn:tg"))));
        let weighted_one = Action::Forward {
            target_groups: vec![WeightedTargetGroup { target_group: "arn:tg".into(), weight: Some(100) }],
            stickiness_seconds: None,
        };
        assert!(same_action(&weighted_one, &Action::forward("arn:tg")), "a lone target group's weight is no difference");
        let two = |a: i32, b: i32| Action::Forward {
            target_groups: vec![
                WeightedTargetGroup { target_group: "arn:b".into(), weight: Some(b) },
                WeightedTargetGroup { target_group: "arn:a".into(), weight: Some(a) },
            ],
            stickiness_seconds: None,
        };
        let mut reordered = two(20, 80);
        if let Action::Forward { target_groups, .. } = &mut reordered {
            target_groups.reverse();
        }
        assert!(same_action(&two(20, 80), &reordered));
        assert!(!same_action(&two(20, 80), &two(80, 20)), "weights of several target groups count");
        // Redirect parts written as their placeholders; an empty content type or body.
        let redirect = |host: Option<&str>, path: Option<&str>| Action::Redirect {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            host: host.map(str::to_string),
            path: path.map(str::to_string),
            query: None,
            status_code: "HTTP_301".into(),
        };
        assert!(same_action(&redirect(Some("#{host}"), Some("/#{path}")), &redirect(None, None)));
        assert!(!same_action(&redirect(Some("example.com"), None), &redirect(None, None)));
        let fixed = |ct: Option<&str>, body: Option<&str>| Action::FixedResponse {
            status_code: "404".into(),
            content_type: ct.map(str::to_string),
            message_body: body.map(str::to_string),
        };
        assert!(same_action(&fixed(Some(""), Some("")), &fixed(None, None)));
        assert!(!same_action(&fixed(Some("text/plain"), None), &fixed(Some("text/html"), None)));
        // Conditions as legacy `Values` (older LBC) or as `*Config`, hosts in any case.
        let legacy = [
            RuleCondition::builder().field("host-header").values("Shop.Example.com").build(),
            RuleCondition::builder().field("path-pattern").values("/*").build(),
        ];
        let ours = [Condition::HostHeader(vec!["shop.example.com".into()]), Condition::PathPattern(vec!["/*".into()])];
        assert_eq!(conditions_from_sdk(&legacy), Some(normalized(&ours)));
        let header = |name: &str, value: &str| Condition::HttpHeader { name: name.into(), values: vec![value.into()] };
        assert_eq!(normalized(&[header("X-Env", "Canary")]), normalized(&[header("x-env", "canary")]));
        let path = |p: &str| Condition::PathPattern(vec![p.into()]);
        assert_ne!(normalized(&[path("/API")]), normalized(&[path("/api")]), "paths match with case");
    }

    #[test]
    fn authentication_round_trips_without_the_secret() {
        let session = AuthSession {
            scope: "openid email".into(),
            session_cookie_name: "c".into(),
            session_timeout: 3600,
            on_unauthenticated_request: "deny".into(),
            extra_params: Tags::from([("prompt".into(), "login".into())]),
        };
        let oidc = Authenticate::Oidc {
            issuer: "https://idp".into(),
            authorization_endpoint: "https://idp/auth".into(),
            token_endpoint: "https://idp/token".into(),
            user_info_endpoint: "https://idp/userinfo".into(),
            client_id: "id".into(),
            client_secret: "s3cret".into(),
            session: session.clone(),
        };
        let mut described = rule_actions_to_sdk(Some(&oidc), &Action::forward("arn:tg"));
        assert_eq!(described.len(), 2);
        described.reverse(); // order comes from `Order`, not position
        let (auth, action) = rule_actions_from_sdk(&described);
        assert_eq!(auth, Some(without_secret(&oidc)));
        assert_eq!(action, Some(Action::forward("arn:tg")));
        let mut d = rule(1, "/a", "arn:tg");
        d.auth = Some(oidc);
        let a = ActualRule {
            arn: "r".into(),
            priority: 1,
            conditions: Some(normalized(&d.conditions)),
            auth,
            action,
            transforms: Some(Vec::new()),
        };
        assert!(plan(&[a], &[d]).is_empty(), "the secret AWS does not describe is no difference");
        let cognito = Authenticate::Cognito {
            user_pool_arn: "arn:pool".into(),
            user_pool_client_id: "c".into(),
            user_pool_domain: "d".into(),
            session,
        };
        let (auth, _) = rule_actions_from_sdk(&rule_actions_to_sdk(Some(&cognito), &Action::fixed("200")));
        assert_eq!(auth, Some(cognito));
    }
}
