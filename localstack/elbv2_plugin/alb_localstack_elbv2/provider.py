"""elbv2 provider for LocalStack community: every operation is dispatched to moto.

Community LocalStack ships no elbv2 provider (every call answers HTTP 501), but it
bundles moto (``moto-ext``), whose ``moto.elbv2`` backend implements most of the API
and shares account/region state with the moto-backed ec2 provider (VPCs, subnets,
security groups), so ALBs validate against what ec2 created.

This mirrors how LocalStack's own providers fall back to moto
(``localstack.services.moto.MotoFallbackDispatcher`` + ``call_moto``), except that
there is no ASF provider class with ``@handler`` methods for elbv2 in the community
package, so we build the dispatch table directly from the botocore service model:
one entry per operation, each calling ``call_moto``. ``call_moto`` parses moto's XML
back into a service response (errors become proper ``ServiceException``s) and the
LocalStack skeleton re-serialises it, like any other provider.

Fixes on top of moto (see ../README.md "Fidelity gaps"):
* CreateLoadBalancer with a name that already exists: moto creates a second LB with
  the same name (ARNs carry a random id). AWS returns the existing LB when the
  settings match (the call is idempotent) and DuplicateLoadBalancerName otherwise.
* CreateTargetGroup with a name that already exists: moto always raises
  DuplicateTargetGroupName; AWS returns the existing target group when the settings
  match. We compare protocol, port, VPC and target type.
* Health checks (CreateTargetGroup, ModifyTargetGroup): moto accepts any matcher and
  most out-of-range values; AWS refuses them with ValidationError. We check them as the
  API reference states them (``validation.check_health_check``). moto also drops a GrpcCode
  sent to ModifyTargetGroup; we store it.
* Listener certificates: moto lets RemoveListenerCertificates remove the default
  certificate (AWS: OperationNotPermitted), adds a certificate already in the list a
  second time (AWS: no-op) or one that does not exist (AWS: CertificateNotFound), forgets the SNI certificates on ModifyListener (AWS keeps
  them) and lists every certificate in DescribeListeners (AWS: the default only).
* Requests AWS refuses and moto accepts are refused first, each check in
  ``validation.py`` with its source: tags (characters, lengths, ``aws:``, 50 per
  resource; moto refused an 11th tag in AddTags), load balancer names, rule priorities,
  rule conditions (lengths, characters, one per field, 5 values and 5 wildcards per rule),
  100 rules per load balancer, certificates and SSL policies only on HTTPS listeners,
  GRPC/HTTP2 target groups only behind HTTPS listeners.
* CreateListener on a port in use: moto made a second listener there (its check compared
  the port with listener ARNs). AWS returns the existing listener when the settings match
  and answers DuplicateListener otherwise; ModifyListener to a used port too.
* Rule transforms (CreateRule/ModifyRule ``Transforms``, ModifyRule ``ResetTransforms``):
  moto dropped them. They are checked (``validation.check_transforms``), kept on moto's rule
  and returned wherever the rule is described; ModifyRule replaces them when given, removes
  them on ResetTransforms and keeps them otherwise, also without conditions or actions.
* Regex conditions (``RegexValues``): moto failed on a condition without ``Values`` and let
  ``Values`` and ``RegexValues`` be mixed; validation refuses the mix and regex features ALB
  lacks, and moto stores and returns the conditions as sent.
* SetRulePriorities: moto checked each new priority against the current ones, so a swap
  of two rules in one call was PriorityInUse, and applied pairs one by one. AWS checks the
  order the call leads to and applies it as a whole.
"""

import copy
import threading

from localstack.aws.api import CommonServiceException, RequestContext, ServiceRequest, ServiceResponse
from localstack.aws.spec import load_service
from localstack.services.moto import call_moto
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider

from . import validation

SERVICE = "elbv2"


def _to_moto(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    return call_moto(context)


# Held while a request is checked against moto's state and applied, so that two requests
# (e.g. two CreateListener on one port) cannot both pass the check.
_state_lock = threading.RLock()


def _backend(context: RequestContext):
    from moto.elbv2.models import elbv2_backends

    return elbv2_backends[context.account_id][context.region]


def _client(context: RequestContext):
    from localstack.aws.connect import connect_to

    return connect_to(aws_access_key_id=context.account_id, region_name=context.region).elbv2


def _create_load_balancer(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    validation.check_load_balancer_name(request.get("Name") or "")
    validation.check_tags(request.get("Tags"))
    with _state_lock:
        backend = _backend(context)
        existing = [lb for lb in backend.load_balancers.values() if lb.name == request.get("Name")]
        if not existing:
            return call_moto(context)
        lb = existing[0]
        subnets = set(request.get("Subnets") or [m["SubnetId"] for m in request.get("SubnetMappings") or []])
        same = (
            (request.get("Scheme") or "internet-facing") == lb.scheme
            and (request.get("Type") or "application") == lb.type
            and subnets == {s.id for s in lb.subnets}
            and ("SecurityGroups" not in request or set(request["SecurityGroups"]) == set(lb.security_groups))
        )
        if not same:
            raise CommonServiceException(
                "DuplicateLoadBalancerName",
                "A load balancer with the specified name already exists.",
                status_code=400,
            )
    # same settings: AWS answers with the existing load balancer
    described = _client(context).describe_load_balancers(LoadBalancerArns=[lb.arn])
    return {"LoadBalancers": described["LoadBalancers"]}


def _create_target_group(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    validation.check_tags(request.get("Tags"))
    backend = _backend(context)
    tg = next((t for t in backend.target_groups.values() if t.name == request.get("Name")), None)
    if tg is None:
        return call_moto(context)
    target_type = request.get("TargetType") or "instance"
    same = (
        target_type == tg.target_type
        and request.get("VpcId") == tg.vpc_id
        and str(request.get("Port")) == str(tg.port)
        and (target_type in ("lambda", "alb") or request.get("Protocol") == tg.protocol)
    )
    if not same:
        return call_moto(context)  # moto raises DuplicateTargetGroupName
    described = _client(context).describe_target_groups(TargetGroupArns=[tg.arn])
    return {"TargetGroups": described["TargetGroups"]}


def _checked_create_target_group(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    validation.check_health_check(request, request.get("Protocol"), request.get("ProtocolVersion"))
    return _create_target_group(context, request)


def _modify_target_group(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    backend = _backend(context)
    tg = backend.target_groups.get(request.get("TargetGroupArn"))
    if tg is not None:
        validation.check_health_check(request, tg.protocol, tg.protocol_version, current=tg)
    response = call_moto(context)
    if tg is not None and request.get("Matcher"):
        # moto keeps only an HttpCode; AWS stores the matcher as sent.
        tg.matcher = dict(request["Matcher"])
        for described in response.get("TargetGroups") or []:
            described["Matcher"] = dict(request["Matcher"])
    return response


def _listener(context: RequestContext, arn: str | None):
    for lb in _backend(context).load_balancers.values():
        if arn in lb.listeners:
            return lb.listeners[arn]
    return None


def _rule(context: RequestContext, arn: str | None):
    """(listener, rule) of a non-default rule, or (None, None)."""
    for lb in _backend(context).load_balancers.values():
        for listener in lb.listeners.values():
            if arn in listener._non_default_rules:
                return listener, listener._non_default_rules[arn]
    return None, None


def _actions(moto_actions) -> list:
    """moto's actions as request-shaped dicts."""
    return [a.data for a in moto_actions or []]


def _default_certificate_only(response: ServiceResponse) -> ServiceResponse:
    """AWS describes a listener with its default certificate only (the rest are listed by
    DescribeListenerCertificates); moto lists them all, the default first."""
    for listener in response.get("Listeners") or []:
        if listener.get("Certificates"):
            listener["Certificates"] = listener["Certificates"][:1]
    return response


def _describe_listeners(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    return _default_certificate_only(call_moto(context))


def _default_certificate(listener: dict) -> str | None:
    return ((listener.get("Certificates") or [{}])[0]).get("CertificateArn")


def _duplicate_listener() -> CommonServiceException:
    return validation.error("DuplicateListener", "A listener with the specified port already exists.")


def _create_listener(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    backend = _backend(context)
    protocol = request.get("Protocol")
    validation.check_tags(request.get("Tags"))
    validation.check_listener_security(protocol, request)
    validation.check_forward_protocol(backend, protocol, request.get("DefaultActions"))
    with _state_lock:
        lb = backend.load_balancers.get(request.get("LoadBalancerArn"))
        on_port = [lst for lst in (lb.listeners.values() if lb else []) if str(lst.port) == str(request.get("Port"))]
        if not on_port:
            validation.check_listener_quota(lb)
            return _default_certificate_only(call_moto(context))
    # One listener per port (moto compared the port with listener ARNs and made a second
    # one). CreateListener: "If you attempt to create multiple listeners with the same
    # settings, each call succeeds" - with the existing listener.
    existing = _client(context).describe_listeners(ListenerArns=[on_port[0].arn])["Listeners"][0]
    same = (
        (existing.get("Protocol") or "").upper() == (protocol or "").upper()
        and _default_certificate(existing) == _default_certificate(request)
        and validation.action_summary(existing.get("DefaultActions")) == validation.action_summary(request.get("DefaultActions"))
    )
    if not same:
        raise _duplicate_listener()
    return {"Listeners": [existing]}


def _modify_listener(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    backend = _backend(context)
    with _state_lock:
        listener = _listener(context, request.get("ListenerArn"))
        if listener is None:
            return call_moto(context)  # ListenerNotFound
        port = request.get("Port")
        lb = backend.load_balancers.get(listener.load_balancer_arn)
        if port is not None and any(str(o.port) == str(port) and o.arn != listener.arn for o in lb.listeners.values()):
            raise _duplicate_listener()
        protocol = request.get("Protocol") or listener.protocol
        validation.check_listener_security(protocol, request, has_certificate=bool(listener.certificates))
        validation.check_forward_protocol(backend, protocol, request.get("DefaultActions") or _actions(listener.default_actions))
        if protocol != listener.protocol:
            for rule in listener._non_default_rules.values():
                validation.check_forward_protocol(backend, protocol, _actions(rule.actions))
        extra = list(listener.certificates[1:])
        response = call_moto(context)
        if request.get("Certificates"):
            # AWS replaces the default certificate only; the certificate list stays.
            listener.certificates = listener.certificates[:1] + extra
    return _default_certificate_only(response)


def _add_listener_certificates(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    listener = _listener(context, request.get("ListenerArn"))
    if listener is None:
        return call_moto(context)
    backend = _backend(context)
    for cert in request.get("Certificates") or []:
        # moto adds any ARN; AWS (like moto's own CreateListener) wants it in ACM or IAM.
        if not backend._certificate_exists(certificate_arn=cert.get("CertificateArn")):
            raise CommonServiceException(
                "CertificateNotFound", f"Certificate '{cert.get('CertificateArn')}' not found", status_code=400
            )
    # A certificate already in the list is not added again (AWS); moto would add it twice.
    listed = set(listener.certificates[1:])
    wanted = [c for c in request.get("Certificates") or [] if c.get("CertificateArn") not in listed]
    if not wanted:
        return {"Certificates": [{"CertificateArn": arn} for arn in listener.certificates[1:]]}
    return call_moto(context)


def _remove_listener_certificates(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    listener = _listener(context, request.get("ListenerArn"))
    if listener is not None and listener.certificates:
        default = listener.certificates[0]
        if any(c.get("CertificateArn") == default for c in request.get("Certificates") or []):
            raise CommonServiceException(
                "OperationNotPermitted",
                f"The default certificate '{default}' cannot be removed from the listener; "
                "replace it with ModifyListener",
                status_code=400,
            )
    return call_moto(context)


def _any_rule(context: RequestContext, arn: str | None):
    """The moto rule with this ARN, the default rules too (moto keys those by 0), or None."""
    for lb in _backend(context).load_balancers.values():
        for listener in lb.listeners.values():
            for rule in listener.rules.values():
                if rule.arn == arn:
                    return rule
    return None


def _store_transforms(rule, transforms: list | None, response: ServiceResponse) -> ServiceResponse:
    """moto drops Transforms; they are kept on its rule object, where its serializer reads them
    (``transforms``) for DescribeRules and SetRulePriorities, and put into this answer."""
    rule.transforms = copy.deepcopy(transforms) or None
    for described in response.get("Rules") or []:
        if described.get("RuleArn") == rule.arn:
            if rule.transforms:
                described["Transforms"] = copy.deepcopy(rule.transforms)
            else:
                described.pop("Transforms", None)
    return response


def _create_rule(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    validation.check_tags(request.get("Tags"))
    validation.check_priority(request.get("Priority"))
    validation.check_conditions(request.get("Conditions"))
    validation.check_transforms(request.get("Transforms"))
    backend = _backend(context)
    with _state_lock:
        listener = _listener(context, request.get("ListenerArn"))
        if listener is not None:
            validation.check_forward_protocol(backend, listener.protocol, request.get("Actions"))
            validation.check_rule_quota(backend.load_balancers[listener.load_balancer_arn])
        response = call_moto(context)  # moto refuses a priority in use
        rule = _any_rule(context, (response.get("Rules") or [{}])[0].get("RuleArn"))
        return _store_transforms(rule, request.get("Transforms"), response) if rule is not None else response


def _modify_rule(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    validation.check_conditions(request.get("Conditions"))
    validation.check_modify_transforms(request)
    with _state_lock:
        rule = _any_rule(context, request.get("RuleArn"))
        if rule is None:
            return call_moto(context)  # RuleNotFound
        changes_transforms = bool(request.get("Transforms")) or bool(request.get("ResetTransforms"))
        if rule.is_default and changes_transforms:
            # User guide, rule-transforms: "You can't add a transform to a default rule."
            raise validation.error("OperationNotPermitted", f"Transforms cannot be set on the default rule '{rule.arn}'")
        listener, _ = _rule(context, rule.arn)
        if listener is not None:
            validation.check_forward_protocol(_backend(context), listener.protocol, request.get("Actions"))
        if request.get("Conditions") or request.get("Actions"):
            response = call_moto(context)
        elif changes_transforms:
            # moto refuses a ModifyRule without conditions and actions; AWS changes the transforms.
            response = {"Rules": _client(context).describe_rules(RuleArns=[rule.arn])["Rules"]}
        else:
            return call_moto(context)
        # ModifyRule: "Any properties that you do not specify are unchanged"; an empty
        # Transforms list counts as not specified (LBC sends ResetTransforms to remove them).
        if request.get("ResetTransforms"):
            return _store_transforms(rule, None, response)
        if request.get("Transforms"):
            return _store_transforms(rule, request["Transforms"], response)
        return _store_transforms(rule, getattr(rule, "transforms", None), response)


def _set_rule_priorities(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    # Checked and applied as a whole (moto checked each pair against the current priorities,
    # refusing a swap, and applied the pairs one by one).
    with _state_lock:
        changes = validation.final_priorities(_backend(context), request.get("RulePriorities") or [])
        for rule, priority in changes:
            rule.priority = type(rule.priority)(priority)  # int or str, as moto parsed it
    if not changes:
        return {"Rules": []}
    return {"Rules": _client(context).describe_rules(RuleArns=[rule.arn for rule, _ in changes])["Rules"]}


def _add_tags(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    tagging = _backend(context).tagging_service
    with _state_lock:
        for arn in request.get("ResourceArns") or []:
            validation.check_tags(request.get("Tags"), tagging.get_tag_dict_for_resource(arn))
        return call_moto(context)


def _patch_moto() -> None:
    """Where moto refuses what AWS accepts, and ``validation`` already checks it as AWS does:
    * AddTags once a resource has 10 tags (AWS: 50 per resource);
    * a condition that has only ``RegexValues`` (host-header, path-pattern, http-header):
      moto reads its ``Values`` and fails with an InternalError (KeyError)."""
    from moto.elbv2.models import ELBv2Backend

    def add_tags(self, resource_arns, tags):
        for arn in resource_arns:
            self._get_resource_by_arn(arn)  # LoadBalancerNotFound, TargetGroupNotFound, ...
            self.tagging_service.tag_resource(arn, tags)

    def regex_only(condition: dict) -> bool:
        configs = [v for k, v in condition.items() if k.endswith("Config") and isinstance(v, dict)]
        return any("RegexValues" in c and "Values" not in c for c in configs)

    validate_conditions = ELBv2Backend._validate_conditions

    def _validate_conditions(self, conditions):
        validate_conditions(self, [c for c in conditions or [] if not regex_only(c)])

    ELBv2Backend.add_tags = add_tags
    ELBv2Backend._validate_conditions = _validate_conditions


class Elbv2MotoProvider(ServiceLifecycleHook):
    service = SERVICE


def moto_dispatch_table(provider: Elbv2MotoProvider) -> dict:
    table = {op: _to_moto for op in load_service(SERVICE).operation_names}
    table["CreateLoadBalancer"] = _create_load_balancer
    table["CreateTargetGroup"] = _checked_create_target_group
    table["ModifyTargetGroup"] = _modify_target_group
    table["CreateListener"] = _create_listener
    table["DescribeListeners"] = _describe_listeners
    table["ModifyListener"] = _modify_listener
    table["AddListenerCertificates"] = _add_listener_certificates
    table["RemoveListenerCertificates"] = _remove_listener_certificates
    table["CreateRule"] = _create_rule
    table["ModifyRule"] = _modify_rule
    table["SetRulePriorities"] = _set_rule_priorities
    table["AddTags"] = _add_tags
    return table


@aws_provider(api=SERVICE, name="default")
def elbv2() -> Service:
    from . import ec2_fidelity

    ec2_fidelity.apply()
    _patch_moto()
    return Service.for_provider(Elbv2MotoProvider(), dispatch_table_factory=moto_dispatch_table)
