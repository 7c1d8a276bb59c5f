"""EC2 behaviours of real AWS that moto lacks and the controller's backend security-group
rules depend on (see ../README.md "Fidelity gaps"). Applied once, when LocalStack loads this
plugin (with EAGER_SERVICE_LOADING, before the first request).

* DescribeNetworkInterfaces filter ``addresses.private-ip-address`` matches every private
  address of an interface, secondary ones included (VPC CNI puts pod IPs there); moto
  matches only the primary address.
* A security-group rule is identified by protocol, ports and source; its description is not
  part of it. moto compares the description of a source group too, so an
  AuthorizeSecurityGroupIngress that AWS refuses with ``InvalidPermission.Duplicate`` made a
  second rule.
* DescribeSecurityGroupRules returns a group-referencing rule's description, and
  ReferencedGroupInfo holds only the group and account (moto dropped the description).
* DeleteSecurityGroup of a group that another group's rules reference, that a network
  interface uses, or that a load balancer uses fails with ``DependencyViolation``; moto
  deleted it.
"""

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.ec2.models.security_groups import SecurityGroupBackend, SecurityGroupRule

    import fnmatch

    from moto.ec2 import utils as ec2_utils

    original_matching = ec2_utils.is_filter_matching

    def is_filter_matching(obj, _filter, filter_value):
        # AWS: an interface matches when any of its private addresses is among the values.
        if _filter == "addresses.private-ip-address" and isinstance(obj, NetworkInterface):
            values = filter_value if isinstance(filter_value, list) else [filter_value]
            addresses = [a.get("PrivateIpAddress") for a in obj.private_ip_addresses or []] or [obj.private_ip_address]
            return any(a and fnmatch.fnmatch(a, v) for a in addresses for v in values)
        return original_matching(obj, _filter, filter_value)

    ec2_utils.is_filter_matching = is_filter_matching

    def source_key(rule):
        sg = rule.source_group or {}
        return (sg.get("GroupId"), sg.get("GroupName"))

    original_eq = SecurityGroupRule.__eq__

    def rule_eq(self, other):
        if not isinstance(other, SecurityGroupRule):
            return NotImplemented
        if source_key(self) != source_key(other):
            return False
        # The rest of moto's comparison, with the source groups made equal.
        saved = other.source_group
        other.source_group = self.source_group
        try:
            return original_eq(self, other)
        finally:
            other.source_group = saved

    SecurityGroupRule.__eq__ = rule_eq

    SecurityGroupRule.description = property(
        lambda self: self.ip_range.get("Description") or (self.source_group or {}).get("Description")
    )
    SecurityGroupRule.referenced_group_info = property(
        lambda self: {k: v for k, v in (self.source_group or {}).items() if k in ("GroupId", "UserId", "VpcId")} or None
    )

    original_delete = SecurityGroupBackend.delete_security_group

    def delete_security_group(self, name=None, group_id=None):
        if group_id:
            in_use = _users_of(self, group_id)
            if in_use:
                raise DependencyViolationError(f"resource {group_id} has a dependent object ({in_use})")
        return original_delete(self, name=name, group_id=group_id)

    SecurityGroupBackend.delete_security_group = delete_security_group


def _users_of(backend, group_id):
    """What still uses the group, as AWS would refuse its deletion for, or ''."""
    for groups in backend.groups.values():
        for group in groups.values():
            if group.id == group_id:
                continue
            for rule in list(group.ingress_rules) + list(group.egress_rules):
                if (rule.source_group or {}).get("GroupId") == group_id:
                    return f"a rule of {group.id}"
    for eni in getattr(backend, "enis", {}).values():
        if any(g.id == group_id for g in getattr(eni, "_group_set", [])):
            return f"network interface {eni.id}"
    try:
        from moto.elbv2.models import elbv2_backends

        elbv2 = elbv2_backends[backend.account_id][backend.region_name]
        for lb in elbv2.load_balancers.values():
            if group_id in (lb.security_groups or []):
                return f"load balancer {lb.name}"
    except KeyError:
        pass
    return ""
