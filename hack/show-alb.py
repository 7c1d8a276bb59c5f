#!/usr/bin/env python3
"""Prints an ALB as the AWS API describes it: the load balancer, its listeners, their
rules in evaluation order, and the target groups with their registered targets.

Usage: show-alb.py DNS_NAME   (AWS_ENDPOINT_URL and credentials from the environment)
"""
import sys

import boto3


def describe_action(a, tg_names):
    t = a["Type"]
    if t == "forward":
        arns = [a["TargetGroupArn"]] if a.get("TargetGroupArn") else [g["TargetGroupArn"] for g in a["ForwardConfig"]["TargetGroups"]]
        return "forward to " + ", ".join(tg_names.get(arn, arn) for arn in arns)
    if t == "fixed-response":
        c = a["FixedResponseConfig"]
        return f"fixed-response {c['StatusCode']}"
    if t == "redirect":
        c = a["RedirectConfig"]
        return f"redirect {c.get('StatusCode')} to {c.get('Protocol', '#{protocol}')}://{c.get('Host', '#{host}')}:{c.get('Port', '#{port}')}{c.get('Path', '')}"
    return t


def describe_condition(c):
    field = c["Field"]
    cfg = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig"}.get(field)
    values = (c.get(cfg) or {}).get("Values") if cfg else None
    return f"{field} {' | '.join(values or c.get('Values') or [])}"


def main():
    dns = sys.argv[1]
    elbv2 = boto3.client("elbv2")
    lbs = [lb for lb in elbv2.describe_load_balancers()["LoadBalancers"] if lb["DNSName"] == dns]
    if not lbs:
        sys.exit(f"no load balancer with DNS name {dns}")
    lb = lbs[0]
    arn = lb["LoadBalancerArn"]
    tags = {t["Key"]: t["Value"] for t in elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]}
    print(f"Load balancer  {lb['LoadBalancerName']}")
    print(f"  DNS name     {lb['DNSName']}")
    print(f"  scheme       {lb['Scheme']}   type {lb['Type']}   state {lb['State']['Code']}")
    subnets = ", ".join("%s (%s)" % (z["SubnetId"], z["ZoneName"]) for z in lb["AvailabilityZones"])
    print(f"  subnets      {subnets}")
    print("  security     " + ", ".join(lb.get("SecurityGroups", [])))
    print("  tags         " + ", ".join(f"{k}={v}" for k, v in sorted(tags.items())))
    tgs = elbv2.describe_target_groups(LoadBalancerArn=arn)["TargetGroups"]
    tg_names = {tg["TargetGroupArn"]: tg["TargetGroupName"] for tg in tgs}
    for listener in sorted(elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"], key=lambda l: l["Port"]):
        print(f"Listener {listener['Protocol']}:{listener['Port']}")
        rules = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
        ordered = sorted(rules, key=lambda r: (r["IsDefault"], int(r["Priority"]) if r["Priority"].isdigit() else 0))
        for r in ordered:
            action = describe_action(r["Actions"][0], tg_names)
            if r["IsDefault"]:
                print(f"  default      -> {action}")
            else:
                conds = " AND ".join(describe_condition(c) for c in r["Conditions"])
                print(f"  rule {r['Priority']:>3}     {conds}  -> {action}")
    for tg in tgs:
        print(f"Target group {tg['TargetGroupName']}  ({tg['TargetType']}, {tg['Protocol']}:{tg['Port']}, health check {tg.get('HealthCheckPath', '/')})")
        health = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
        for h in sorted(health, key=lambda h: h["Target"]["Id"]):
            print(f"  target       {h['Target']['Id']}:{h['Target']['Port']}  {h['TargetHealth']['State']}")
        if not health:
            print("  (no targets)")


if __name__ == "__main__":
    main()
