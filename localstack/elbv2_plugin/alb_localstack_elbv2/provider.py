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
"""

import threading

from localstack.aws.api import CommonServiceException, RequestContext, ServiceRequest, ServiceResponse
from localstack.aws.spec import load_service
from localstack.services.moto import call_moto
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider

SERVICE = "elbv2"


def _to_moto(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    return call_moto(context)


_create_lock = threading.Lock()


def _create_load_balancer(context: RequestContext, request: ServiceRequest) -> ServiceResponse:
    from moto.elbv2.models import elbv2_backends

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


class Elbv2MotoProvider(ServiceLifecycleHook):
    service = SERVICE


def moto_dispatch_table(provider: Elbv2MotoProvider) -> dict:
    table = {op: _to_moto for op in load_service(SERVICE).operation_names}
    table["CreateLoadBalancer"] = _create_load_balancer
    table["CreateTargetGroup"] = _create_target_group
    return table


@aws_provider(api=SERVICE, name="default")
def elbv2() -> Service:
    from . import ec2_fidelity

    ec2_fidelity.apply()
    return Service.for_provider(Elbv2MotoProvider(), dispatch_table_factory=moto_dispatch_table)
