"""What AWS refuses and moto accepts: checks run on an ELBv2 request before moto sees it.

Each check names its source: a page of the ELBv2 API reference
(https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/) or a quota of
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html
("Quotas for your Application Load Balancers"). Errors carry AWS's code and a message shaped
like AWS's (real messages where they are known). Requests are the shapes LocalStack parses
(botocore names: ``Conditions[].HostHeaderConfig.Values``...); state is moto's backend.

Not enforced, on purpose: the user guide's "up to three match evaluations per condition"
(rule-condition-types). Tools built on real AWS (Copilot) put four and five host names in one
host-header condition, so AWS does not refuse that; only the per-rule quota below applies.
"""

import ipaddress
import re
import unicodedata

from localstack.aws.api import CommonServiceException


def error(code: str, message: str) -> CommonServiceException:
    return CommonServiceException(code, message, status_code=400)


def invalid(message: str) -> CommonServiceException:
    return error("ValidationError", message)


# ---- tags ------------------------------------------------------------------------------

# Quota "Tags per resource" (Elastic Load Balancing tagging: 50) and the Tag shape of the API
# reference: Key 1-128 characters, Value 0-256, both ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$; keys
# starting with "aws:" are reserved for AWS (Tag: "The aws: prefix is reserved").
TAGS_PER_RESOURCE = 50


def _tag_chars_ok(text: str) -> bool:
    return all(unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@" for c in text)


def check_tags(tags: list | None, existing: dict | None = None) -> None:
    """Tags of a create call (``existing`` None) or an AddTags call on a resource that has
    ``existing`` tags."""
    keys = []
    for tag in tags or []:
        key, value = tag.get("Key") or "", tag.get("Value") or ""
        if not (1 <= len(key) <= 128) or len(value) > 256 or not _tag_chars_ok(key) or not _tag_chars_ok(value):
            raise invalid(
                f"1 validation error detected: Value '{key}={value}' at 'tags' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"
            )
        if key.lower().startswith("aws:"):
            raise invalid(f"Tag key '{key}' is not valid: the 'aws:' prefix is reserved for AWS use")
        if key in keys:
            # API reference, CreateLoadBalancer/AddTags errors: DuplicateTagKeys.
            raise error("DuplicateTagKeys", f"Tag key was specified more than once: {key}")
        keys.append(key)
    if len(set(existing or {}) | set(keys)) > TAGS_PER_RESOURCE:
        raise error("TooManyTags", "The quota for the number of tags that can be assigned to a load balancer has been reached")


# ---- target groups ---------------------------------------------------------------------


def _codes_in_range(codes: str, low: int, high: int) -> bool:
    """ "200", "200,202", "200-299": every code (and range end) within [low, high]."""
    for part in codes.split(","):
        ends = part.split("-")
        if len(ends) > 2 or not all(e.strip().isdigit() for e in ends):
            return False
        values = [int(e) for e in ends]
        if not all(low <= v <= high for v in values) or values != sorted(values):
            return False
    return True


def check_health_check(request: dict, protocol: str | None, version: str | None, current=None) -> None:
    """Refuses what AWS refuses for an HTTP/HTTPS (application load balancer) target group:
    API reference CreateTargetGroup/ModifyTargetGroup (HealthCheckIntervalSeconds 5-300,
    HealthCheckTimeoutSeconds 2-120 and "must be smaller than the interval", thresholds 2-10,
    HealthCheckPath 1-1024) and Matcher (HttpCode 200-499, GrpcCode 0-99, by ProtocolVersion).

    ``current`` is the target group being modified: values the request leaves out keep
    theirs, so the timeout is compared with the interval the group will have.
    """

    def ranged(key: str, low: int, high: int) -> None:
        value = request.get(key)
        if value is not None and not low <= int(value) <= high:
            raise invalid(f"Value '{value}' at '{key[0].lower() + key[1:]}' failed to satisfy constraint: "
                           f"Member must have value between {low} and {high}")

    ranged("HealthCheckIntervalSeconds", 5, 300)
    ranged("HealthCheckTimeoutSeconds", 2, 120)
    ranged("HealthyThresholdCount", 2, 10)
    ranged("UnhealthyThresholdCount", 2, 10)
    path = request.get("HealthCheckPath")
    if path is not None and not 1 <= len(path) <= 1024:
        raise invalid("Value at 'healthCheckPath' failed to satisfy constraint: Member must have length between 1 and 1024")
    if protocol not in ("HTTP", "HTTPS"):
        return
    interval = request.get("HealthCheckIntervalSeconds")
    timeout = request.get("HealthCheckTimeoutSeconds")
    if current is not None:
        interval = interval if interval is not None else current.health_check_interval_seconds
        timeout = timeout if timeout is not None else current.health_check_timeout_seconds
    if interval is not None and timeout is not None and int(timeout) >= int(interval):
        raise invalid(f"Health check timeout '{timeout}' must be smaller than the interval '{interval}'")
    matcher = request.get("Matcher") or {}
    grpc = (version or "HTTP1").upper() == "GRPC"
    if grpc and matcher.get("HttpCode") is not None:
        raise invalid("Health check matcher HTTP code cannot be used with protocol version GRPC; use GrpcCode")
    if not grpc and matcher.get("GrpcCode") is not None:
        raise invalid(f"Health check matcher gRPC code cannot be used with protocol version {version or 'HTTP1'}; use HttpCode")
    if matcher.get("HttpCode") is not None and not _codes_in_range(matcher["HttpCode"], 200, 499):
        raise invalid(f"Health check matcher HTTP code '{matcher['HttpCode']}' must be within '200-499' inclusive")
    if matcher.get("GrpcCode") is not None and not _codes_in_range(matcher["GrpcCode"], 0, 99):
        raise invalid(f"Health check matcher GRPC code '{matcher['GrpcCode']}' must be within '0-99' inclusive")


# ---- names -----------------------------------------------------------------------------


def check_load_balancer_name(name: str) -> None:
    """CreateLoadBalancer, Name: "a maximum of 32 characters, must contain only alphanumeric
    characters or hyphens, must not begin or end with a hyphen, and must not begin with
    internal-". (Target group names, same rules but internal-, moto already checks.)"""
    if len(name) > 32:
        raise invalid(f"Load balancer name '{name}' cannot be longer than '32' characters")
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise invalid(f"Load balancer name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)")
    if name.startswith("-") or name.endswith("-"):
        raise invalid(f"Load balancer name '{name}' cannot begin or end with '-'")
    if name.startswith("internal-"):
        raise invalid(f"Load balancer name '{name}' cannot begin with 'internal-'")


# ---- rules -----------------------------------------------------------------------------


def check_priority(priority, where: str = "priority") -> None:
    """CreateRule Priority / RulePriorityPair Priority: valid range 1-50000."""
    if priority is None:
        return
    if not 1 <= int(priority) <= 50000:
        bound = "greater than or equal to 1" if int(priority) < 1 else "less than or equal to 50000"
        raise invalid(f"1 validation error detected: Value '{priority}' at '{where}' failed to satisfy constraint: Member must have value {bound}")


# Quotas "Condition values per rule" (5) and "Condition wildcards per rule" (5).
CONDITION_VALUES_PER_RULE = 5
WILDCARDS_PER_RULE = 5
# RuleCondition: "up to one of each of the following conditions: http-request-method,
# host-header, path-pattern, and source-ip" (http-header and query-string: any number).
ONE_PER_RULE = ("host-header", "http-request-method", "path-pattern", "source-ip")
# RuleCondition Values: a host name "can contain A-Z, a-z, 0-9, - . * ?"; a path pattern
# "A-Z, a-z, 0-9, _ - . $ / ~ " ' @ : + & * ?".
HOST_CHARS = re.compile(r"[A-Za-z0-9.*?-]+")
PATH_CHARS = re.compile(r"[A-Za-z0-9_.$/~\"'@:+&*?-]+")
# HttpHeaderConditionConfig HttpHeaderName: "allowed characters are specified by RFC 7230
# [token]. Wildcards are not supported."
HEADER_NAME_CHARS = re.compile(r"[A-Za-z0-9!#$%&'+.^_`|~-]+")
# HttpRequestMethodConditionConfig Values: "allowed characters are A-Z, hyphen (-), and
# underscore (_)".
METHOD_CHARS = re.compile(r"[A-Z_-]+")


def _wildcards(value: str, escapable: bool = False) -> int:
    """`*` and `?` in a value; with ``escapable`` (query strings) a `\\` makes the next one a
    literal (QueryStringConditionConfig)."""
    count, escaped = 0, False
    for c in value:
        if escapable and c == "\\" and not escaped:
            escaped = True
            continue
        if c in "*?" and not escaped:
            count += 1
        escaped = False
    return count


def _too_long(field: str, what: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise invalid(f"The '{field}' {what} is too long; the limit is '{limit}'")


def _not_valid(value: str) -> CommonServiceException:
    return invalid(f"Condition value '{value}' contains a character that is not valid")


def _config_values(condition: dict, config_key: str) -> tuple[list, list]:
    """(Values, RegexValues) of a host-header, path-pattern or http-header condition. The user
    guide (rule-condition-types): these conditions use "either value matching or regular
    expression (regex) matching"; AWS refuses a condition that has both."""
    config = condition.get(config_key) or {}
    values = list(config.get("Values") or condition.get("Values") or [])
    regexes = list(config.get("RegexValues") or [])
    if values and regexes:
        raise invalid(f"A '{condition.get('Field')}' condition can specify either Values or RegexValues, not both")
    return values, regexes


def _check_host(value: str) -> int:
    # HostHeaderConditionConfig Values: "maximum length 128 ... You must include at least one
    # "." character. You can include only alphabetical characters after the final "."".
    _too_long("host-header", "value", value, 128)
    tld = value.rsplit(".", 1)[-1]
    if not HOST_CHARS.fullmatch(value) or "." not in value or not re.fullmatch(r"[A-Za-z*?]+", tld):
        raise _not_valid(value)
    return _wildcards(value)


def _check_path(value: str) -> int:
    # PathPatternConditionConfig Values: "The maximum length of each string is 128 characters".
    _too_long("path-pattern", "value", value, 128)
    if not PATH_CHARS.fullmatch(value):
        raise _not_valid(value)
    return _wildcards(value)


def unsupported_regex_feature(regex: str) -> str | None:
    """The first feature of ``regex`` that ALB regular expressions lack, or None. User guide,
    rule-condition-types and rule-transforms: "The regular expressions ... do not support the
    following features: lookaheads, lookbehinds, backreferences, atomic groups, possessive
    quantifiers, subroutines, recursion, and Unicode character classes (such as \\p{L})".
    Characters inside a bracket class are literals and are skipped."""
    i, in_class, quantifier_end = 0, False, False
    while i < len(regex):
        c, nxt = regex[i], regex[i + 1 : i + 2]
        if c == "\\":
            if nxt in ("p", "P"):
                return "a Unicode character class"
            if not in_class and (nxt in ("g", "k") or (nxt.isdigit() and nxt != "0")):
                return "a backreference"
            i, quantifier_end = i + 2, False
            continue
        if in_class:
            in_class = c != "]"
            i += 1
            continue
        if c == "[":
            in_class = True
            # a "]" right after "[" or "[^" is a literal
            i += 2 if regex[i + 1 : i + 2] == "]" else 3 if regex[i + 1 : i + 3] == "^]" else 1
            quantifier_end = False
            continue
        if c == "(" and nxt == "?":
            group = regex[i + 2 : i + 5]
            if group.startswith(("=", "!")):
                return "a lookahead"
            if group.startswith(("<=", "<!")):
                return "a lookbehind"
            if group.startswith(">"):
                return "an atomic group"
            if group.startswith(("R", "&", "P>")) or re.match(r"[+-]?\d", group):
                return "a subroutine or recursion"
            if group.startswith("P="):
                return "a backreference"
            i, quantifier_end = i + 2, False  # "(?" : its "?" is no quantifier
            continue
        if c in "*+?" and quantifier_end:
            if c == "+":
                return "a possessive quantifier"
            quantifier_end = False  # "a+?" is lazy
        elif c in "*+?":
            quantifier_end = True
        else:
            quantifier_end = c == "}" and re.search(r"\{\d+(,\d*)?\}$", regex[: i + 1]) is not None
        i += 1
    return None


def _check_regex(field: str, value: str) -> int:
    # *ConditionConfig RegexValues: "The maximum length of each string is 128 characters".
    _too_long(field, "regular expression", value, 128)
    feature = unsupported_regex_feature(value)
    if feature:
        raise invalid(f"The '{field}' regular expression '{value}' uses {feature}, which is not supported")
    return 0


def check_conditions(conditions: list | None) -> None:
    """The conditions of a CreateRule/ModifyRule, against RuleCondition and the *Config
    shapes of the API reference and the rule quotas."""
    conditions = conditions or []
    fields = [c.get("Field") for c in conditions]
    for field in ONE_PER_RULE:
        if fields.count(field) > 1:
            raise invalid(f"A rule can only have one '{field}' condition")
    values_in_rule = wildcards_in_rule = 0
    for condition in conditions:
        field = condition.get("Field")
        compared: list = []  # what the condition compares, for "must be unique"
        if field == "host-header":
            values, regexes = _config_values(condition, "HostHeaderConfig")
            wildcards_in_rule += sum(_check_host(v) for v in values) + sum(_check_regex(field, r) for r in regexes)
            compared = [v.lower() for v in values] + regexes
        elif field == "path-pattern":
            values, regexes = _config_values(condition, "PathPatternConfig")
            wildcards_in_rule += sum(_check_path(v) for v in values) + sum(_check_regex(field, r) for r in regexes)
            compared = values + regexes
        elif field == "http-header":
            config = condition.get("HttpHeaderConfig") or {}
            name = config.get("HttpHeaderName") or ""
            # HttpHeaderConditionConfig HttpHeaderName: "maximum length is 40 characters";
            # "You can't use an HTTP header condition to specify the host header."
            _too_long("HttpHeaderName", "value", name, 40)
            if not HEADER_NAME_CHARS.fullmatch(name) or name.lower() == "host":
                raise invalid(f"The HTTP header name '{name}' is not valid")
            values, regexes = _config_values(condition, "HttpHeaderConfig")
            for v in values:
                _too_long("http-header", "value", v, 128)  # HttpHeaderConditionConfig Values
            wildcards_in_rule += sum(_wildcards(v) for v in values) + sum(_check_regex(field, r) for r in regexes)
            compared = [v.lower() for v in values] + regexes
        elif field == "http-request-method":
            compared = list((condition.get("HttpRequestMethodConfig") or {}).get("Values") or [])
            for v in compared:
                # HttpRequestMethodConditionConfig Values: "maximum length is 40 characters".
                _too_long("http-request-method", "value", v, 40)
                if not METHOD_CHARS.fullmatch(v):
                    raise _not_valid(v)
        elif field == "query-string":
            pairs = (condition.get("QueryStringConfig") or {}).get("Values") or []
            for p in pairs:
                key, value = p.get("Key"), p.get("Value") or ""
                # QueryStringConditionConfig Values: "maximum length of each string is 128".
                _too_long("query-string", "key", key or "", 128)
                _too_long("query-string", "value", value, 128)
                wildcards_in_rule += _wildcards(key or "", escapable=True) + _wildcards(value, escapable=True)
            compared = [((p.get("Key") or "").lower(), (p.get("Value") or "").lower()) for p in pairs]
        elif field == "source-ip":
            compared = list((condition.get("SourceIpConfig") or {}).get("Values") or [])
            for v in compared:
                # SourceIpConditionConfig Values: "IPv4 or IPv6 addresses, in CIDR format".
                try:
                    ipaddress.ip_network(v, strict=False)
                except ValueError:
                    raise invalid(f"Condition value '{v}' is not a valid CIDR block") from None
        else:
            continue  # moto refuses an unknown field
        if not compared:
            # RuleCondition: "the value for a condition can't be empty".
            raise invalid("A condition value must be specified")
        if len(set(compared)) != len(compared):
            raise invalid("Condition values must be unique")
        values_in_rule += len(compared)
    if values_in_rule > CONDITION_VALUES_PER_RULE:
        raise invalid(f"A rule can only have '{CONDITION_VALUES_PER_RULE}' condition values")
    if wildcards_in_rule > WILDCARDS_PER_RULE:
        raise invalid(f"A rule can only have '{WILDCARDS_PER_RULE}' wildcards")


# RuleTransform Type: host-header-rewrite | url-rewrite, each with its own config ("Specify
# only when Type is ..."); CreateRule/ModifyRule Transforms: "You can add one host header
# rewrite transform and one URL rewrite transform".
TRANSFORM_CONFIGS = {"host-header-rewrite": "HostHeaderRewriteConfig", "url-rewrite": "UrlRewriteConfig"}
# RewriteConfig Regex and Replace: "The maximum length of the string is 1,024 characters".
REWRITE_LIMIT = 1024


def check_transforms(transforms: list | None) -> None:
    """The Transforms of a CreateRule/ModifyRule (API reference RuleTransform, *RewriteConfig,
    RewriteConfig). One rewrite per transform: the Rewrites list takes a single entry on AWS
    (measured by the Terraform provider, hashicorp/terraform-provider-aws#44702)."""
    seen = []
    for transform in transforms or []:
        kind = transform.get("Type")
        if kind not in TRANSFORM_CONFIGS:
            raise invalid(f"Transform type '{kind}' is not valid; valid types are 'host-header-rewrite' and 'url-rewrite'")
        if kind in seen:
            raise invalid(f"A rule can only have one '{kind}' transform")
        seen.append(kind)
        config_key = TRANSFORM_CONFIGS[kind]
        for other_kind, other_key in TRANSFORM_CONFIGS.items():
            if other_kind != kind and transform.get(other_key) is not None:
                raise invalid(f"'{other_key}' can only be specified for a '{other_kind}' transform")
        rewrites = (transform.get(config_key) or {}).get("Rewrites") or []
        if len(rewrites) != 1:
            raise invalid(f"A '{kind}' transform must have a '{config_key}' with exactly one rewrite")
        rewrite = rewrites[0]
        for key in ("Regex", "Replace"):
            if rewrite.get(key) is None:
                raise invalid(f"A rewrite of a '{kind}' transform must specify '{key}'")
            _too_long(kind, key, rewrite[key], REWRITE_LIMIT)
        feature = unsupported_regex_feature(rewrite["Regex"])
        if feature:
            raise invalid(f"The '{kind}' regular expression '{rewrite['Regex']}' uses {feature}, which is not supported")


def check_modify_transforms(request: dict) -> None:
    """ModifyRule: "If you specify Transforms, you can't specify ResetTransforms"."""
    check_transforms(request.get("Transforms"))
    if request.get("Transforms") and request.get("ResetTransforms"):
        raise invalid("Transforms and ResetTransforms cannot be specified together")


# Quota "Rules per Application Load Balancer (excluding default rules)": 100.
RULES_PER_LOAD_BALANCER = 100


# Quota "Listeners per Application Load Balancer": 50; CreateListener answers
# TooManyListeners ("You've reached the limit on the number of listeners per load balancer").
LISTENERS_PER_LOAD_BALANCER = 50


def check_listener_quota(load_balancer) -> None:
    if load_balancer is not None and len(load_balancer.listeners) >= LISTENERS_PER_LOAD_BALANCER:
        raise error("TooManyListeners", f"The maximum number of listeners on load balancer {load_balancer.arn} has been reached")


def check_rule_quota(load_balancer) -> None:
    rules = sum(len(listener._non_default_rules) for listener in load_balancer.listeners.values())
    if rules >= RULES_PER_LOAD_BALANCER:
        raise error("TooManyRules", f"The maximum number of rules on load balancer {load_balancer.arn} has been reached")


def final_priorities(backend, pairs: list) -> list:
    """SetRulePriorities, checked as a whole: "You can reorder the rules as long as there are
    no priority conflicts in the new order. Any existing rules that you do not specify retain
    their current priority." The priorities every listener would end with are checked, not
    each pair against the current ones, so a swap in one call is fine. Returns the (rule,
    priority) pairs to apply; raises, changing nothing, if any is refused."""
    rules = {}  # rule ARN -> (listener, rule)
    for lb in backend.load_balancers.values():
        for listener in lb.listeners.values():
            for rule in listener.rules.values():
                rules[rule.arn] = (listener, rule)
    wanted, seen = [], {}
    for i, pair in enumerate(pairs, start=1):
        arn, priority = pair.get("RuleArn"), pair.get("Priority")
        check_priority(priority, f"rulePriorities.{i}.member.priority")
        if arn not in rules:
            raise error("RuleNotFound", f"One or more rules not found: '{arn}'")
        listener, rule = rules[arn]
        if rule.is_default:
            raise error("OperationNotPermitted", f"The priority of the default rule '{arn}' cannot be changed")
        if arn in seen:
            raise invalid(f"Rule '{arn}' was provided multiple times")
        if int(priority) in seen.values():
            raise invalid(f"Priority '{priority}' was provided multiple times")
        seen[arn] = int(priority)
        wanted.append((listener, rule, int(priority)))
    for listener in {id(listener): listener for listener, _, _ in wanted}.values():
        final = [seen.get(r.arn, int(r.priority)) for r in listener._non_default_rules.values()]
        if len(final) != len(set(final)):
            raise error("PriorityInUse", "The specified priority is in use.")
    return [(rule, priority) for _, rule, priority in wanted]


# ---- listeners -------------------------------------------------------------------------


def check_listener_security(protocol: str | None, request: dict, has_certificate: bool = False) -> None:
    """CreateListener/ModifyListener Certificates and SslPolicy: "[HTTPS and TLS listeners]".
    AWS: "A certificate must be specified for HTTPS listeners", "A certificate cannot be
    specified for HTTP listeners". ``has_certificate``: the listener already has one
    (ModifyListener keeps it when the request gives none)."""
    protocol = (protocol or "").upper()
    if protocol == "HTTPS" and not request.get("Certificates") and not has_certificate:
        raise invalid("A certificate must be specified for HTTPS listeners")
    if protocol == "HTTP" and request.get("Certificates"):
        raise invalid("A certificate cannot be specified for HTTP listeners")
    if protocol == "HTTP" and request.get("SslPolicy"):
        raise invalid("An SSL policy cannot be specified for HTTP listeners")


def forward_target_group_arns(action: dict) -> list:
    if (action.get("Type") or "").lower() != "forward":
        return []
    if action.get("TargetGroupArn"):
        return [action["TargetGroupArn"]]
    return [t.get("TargetGroupArn") for t in (action.get("ForwardConfig") or {}).get("TargetGroups") or []]


def check_forward_protocol(backend, protocol: str | None, actions: list | None) -> None:
    """CreateTargetGroup ProtocolVersion: GRPC and HTTP2 target groups are "supported only
    with HTTPS listeners". AWS answers InvalidLoadBalancerAction: "Listener protocol 'HTTP' is
    not supported with a target group with the protocol-version 'GRPC'"."""
    protocol = (protocol or "").upper()
    if protocol != "HTTP":
        return
    for action in actions or []:
        for arn in forward_target_group_arns(action):
            tg = backend.target_groups.get(arn)
            version = (getattr(tg, "protocol_version", None) or "HTTP1").upper()
            if tg is not None and version in ("GRPC", "HTTP2"):
                raise error(
                    "InvalidLoadBalancerAction",
                    f"Listener protocol '{protocol}' is not supported with a target group with the protocol-version '{version}'",
                )


def action_summary(actions: list | None) -> list:
    """What a listener's default actions do, to tell an identical CreateListener (AWS returns
    the listener: "If you attempt to create multiple listeners with the same settings, each
    call succeeds") from a different one on the same port (DuplicateListener)."""
    out = []
    for a in actions or []:
        out.append(
            (
                (a.get("Type") or "").lower(),
                tuple(sorted(forward_target_group_arns(a))),
                (a.get("FixedResponseConfig") or {}).get("StatusCode"),
                (a.get("RedirectConfig") or {}).get("StatusCode"),
            )
        )
    return sorted(out)
