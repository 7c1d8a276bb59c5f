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
  API reference states them (see ``_check_health_check``). moto also drops a GrpcCode
  sent to ModifyTargetGroup; we store it.
* Listener certificates: moto lets RemoveListenerCertificates remove the default
  certificate (AWS: OperationNotPermitted), adds a certificate already in the list a
  second time (AWS: no-op) or one that does not exist (AWS: CertificateNotFound), forgets the SNI certificates on ModifyListener (AWS keeps
  them) and lists every certificate in DescribeListeners (AWS: the default only).
* Tags (CreateLoadBalancer, CreateTargetGroup, CreateListener, CreateRule, AddTags):
  moto takes any key and value; AWS refuses a key outside 1-128 characters, a value
  over 256, or a character that is not a letter, digit, space or ``_.:/=+-@``.
"""

import threading
import unicodedata

from localstack.aws.api import CommonServiceException, RequestContext, ServiceRequest, ServiceResponse
from localstack.aws.spec import load_service
from localstack.services.moto import call_moto
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider

SERVICE = "elbv2"


def _to_moto(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    return call_moto(context)


_create_lock = threading.Lock()


def _tag_chars_ok(text: str) -> bool:
    # AWS's pattern ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$
    return all(unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@" for c in text)


def _check_tags(request: ServiceRequest) -> None:
    for tag in request.get("Tags") or []:
        key, value = tag.get("Key") or "", tag.get("Value") or ""
        if not (1 <= len(key) <= 128) or len(value) > 256 or not _tag_chars_ok(key) or not _tag_chars_ok(value):
            raise CommonServiceException(
                "ValidationError",
                f"1 validation error detected: Value '{key}={value}' at 'tags' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$",
                status_code=400,
            )


def _tagged_to_moto(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    _check_tags(request)
    return call_moto(context)


def _create_load_balancer(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    from moto.elbv2.models import elbv2_backends

    _check_tags(request)
    with _create_lock:
        backend = elbv2_backends[context.account_id][context.region]
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
    from localstack.aws.connect import connect_to

    described = connect_to(
        aws_access_key_id=context.account_id, region_name=context.region
    ).elbv2.describe_load_balancers(LoadBalancerArns=[lb.arn])
    return {"LoadBalancers": described["LoadBalancers"]}


def _create_target_group(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    from moto.elbv2.models import elbv2_backends

    _check_tags(request)
    backend = elbv2_backends[context.account_id][context.region]
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
    from localstack.aws.connect import connect_to

    described = connect_to(
        aws_access_key_id=context.account_id, region_name=context.region
    ).elbv2.describe_target_groups(TargetGroupArns=[tg.arn])
    return {"TargetGroups": described["TargetGroups"]}


def _invalid(message: str) -> CommonServiceException:
    return CommonServiceException("ValidationError", message, status_code=400)


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


def _check_health_check(request: dict, protocol: str | None, version: str | None, current=None) -> None:
    """Refuses what AWS refuses for an HTTP/HTTPS (application load balancer) target group.

    ``current`` is the target group being modified: values the request leaves out keep
    theirs, so the timeout is compared with the interval the group will have.
    """

    def ranged(key: str, low: int, high: int) -> None:
        value = request.get(key)
        if value is not None and not low <= int(value) <= high:
            raise _invalid(f"Value '{value}' at '{key[0].lower() + key[1:]}' failed to satisfy constraint: "
                           f"Member must have value between {low} and {high}")

    ranged("HealthCheckIntervalSeconds", 5, 300)
    ranged("HealthCheckTimeoutSeconds", 2, 120)
    ranged("HealthyThresholdCount", 2, 10)
    ranged("UnhealthyThresholdCount", 2, 10)
    path = request.get("HealthCheckPath")
    if path is not None and not 1 <= len(path) <= 1024:
        raise _invalid("Value at 'healthCheckPath' failed to satisfy constraint: Member must have length between 1 and 1024")
    if protocol not in ("HTTP", "HTTPS"):
        return
    interval = request.get("HealthCheckIntervalSeconds")
    timeout = request.get("HealthCheckTimeoutSeconds")
    if current is not None:
        interval = interval if interval is not None else current.health_check_interval_seconds
        timeout = timeout if timeout is not None else current.health_check_timeout_seconds
    if interval is not None and timeout is not None and int(timeout) >= int(interval):
        raise _invalid(f"Health check timeout '{timeout}' must be smaller than the interval '{interval}'")
    matcher = request.get("Matcher") or {}
    grpc = (version or "HTTP1").upper() == "GRPC"
    if grpc and matcher.get("HttpCode") is not None:
        raise _invalid("Health check matcher HTTP code cannot be used with protocol version GRPC; use GrpcCode")
    if not grpc and matcher.get("GrpcCode") is not None:
        raise _invalid(f"Health check matcher gRPC code cannot be used with protocol version {version or 'HTTP1'}; use HttpCode")
    if matcher.get("HttpCode") is not None and not _codes_in_range(matcher["HttpCode"], 200, 499):
        raise _invalid(f"Health check matcher HTTP code '{matcher['HttpCode']}' must be within '200-499'")
    if matcher.get("GrpcCode") is not None and not _codes_in_range(matcher["GrpcCode"], 0, 99):
        raise _invalid(f"Health check matcher gRPC code '{matcher['GrpcCode']}' must be within '0-99'")


def _checked_create_target_group(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    _check_health_check(request, request.get("Protocol"), request.get("ProtocolVersion"))
    return _create_target_group(context, request)


def _modify_target_group(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    from moto.elbv2.models import elbv2_backends

    backend = elbv2_backends[context.account_id][context.region]
    tg = backend.target_groups.get(request.get("TargetGroupArn"))
    if tg is not None:
        _check_health_check(request, tg.protocol, tg.protocol_version, current=tg)
    response = call_moto(context)
    if tg is not None and request.get("Matcher"):
        # moto keeps only an HttpCode; AWS stores the matcher as sent.
        tg.matcher = dict(request["Matcher"])
        for described in response.get("TargetGroups") or []:
            described["Matcher"] = dict(request["Matcher"])
    return response


def _listener(context: RequestContext, arn: str | None):
    from moto.elbv2.models import elbv2_backends

    backend = elbv2_backends[context.account_id][context.region]
    for lb in backend.load_balancers.values():
        if arn in lb.listeners:
            return lb.listeners[arn]
    return None


def _default_certificate_only(response: ServiceResponse) -> ServiceResponse:
    """AWS describes a listener with its default certificate only (the rest are listed by
    DescribeListenerCertificates); moto lists them all, the default first."""
    for listener in response.get("Listeners") or []:
        if listener.get("Certificates"):
            listener["Certificates"] = listener["Certificates"][:1]
    return response


def _describe_listeners(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    return _default_certificate_only(call_moto(context))


def _create_listener(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    _check_tags(request)
    return _default_certificate_only(call_moto(context))


def _modify_listener(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    listener = _listener(context, request.get("ListenerArn"))
    extra = list(listener.certificates[1:]) if listener is not None else []
    response = call_moto(context)
    if listener is not None and request.get("Certificates"):
        # AWS replaces the default certificate only; the certificate list stays.
        listener.certificates = listener.certificates[:1] + extra
    return _default_certificate_only(response)


def _add_listener_certificates(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    from moto.elbv2.models import elbv2_backends

    listener = _listener(context, request.get("ListenerArn"))
    if listener is None:
        return call_moto(context)
    backend = elbv2_backends[context.account_id][context.region]
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
    for op in ("CreateRule", "AddTags"):
        table[op] = _tagged_to_moto
    return table


@aws_provider(api=SERVICE, name="default")
def elbv2() -> Service:
    from . import ec2_fidelity

    ec2_fidelity.apply()
    return Service.for_provider(Elbv2MotoProvider(), dispatch_table_factory=moto_dispatch_table)
