#!/usr/bin/env python3
"""Smoke test for the LocalStack elbv2 plugin (run against a running instance, see up.sh).

Usage: smoke_test.py [--account 111111111111] [--other-account 222222222222] [--cluster smoke]
Needs AWS_ENDPOINT_URL (source $BED_DIR/localstack.env, or use smoke_test.sh).
Prints PASS/FAIL per step plus NOTE lines with measured behaviour; exit 1 on any FAIL.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
import traceback

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS: list[tuple[str, bool]] = []


def step(name, fn):
    try:
        out = fn()
        RESULTS.append((name, True))
        print(f"PASS {name}", flush=True)
        return out
    except Exception as e:  # noqa: BLE001
        RESULTS.append((name, False))
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        if os.environ.get("SMOKE_TRACE"):
            traceback.print_exc()
        return None


def note(msg):
    print(f"NOTE {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def err_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def tagmap(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--account", default=None,
                    help="12-digit access key id = account to use (default: a random, hence fresh, one)")
    ap.add_argument("--other-account", default="222222222222", help="account used for the isolation check")
    ap.add_argument("--cluster", default="smoke")
    ap.add_argument("--region", default="us-east-1")
    args = ap.parse_args()
    args.account = args.account or "1" + "".join(random.choice("0123456789") for _ in range(11))
    print(f"NOTE account {args.account}", flush=True)
    if not os.environ.get("AWS_ENDPOINT_URL"):
        print("AWS_ENDPOINT_URL not set", file=sys.stderr)
        return 2

    def session(key):
        return boto3.session.Session(
            aws_access_key_id=key, aws_secret_access_key="test", region_name=args.region
        )

    s = session(args.account)
    elb, ec2, tagging = s.client("elbv2"), s.client("ec2"), s.client("resourcegroupstaggingapi")
    ctx: dict = {}

    # ---- seed ----
    def seed():
        env = dict(os.environ, AWS_ACCESS_KEY_ID=args.account, AWS_SECRET_ACCESS_KEY="test")
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, "seed.py"), "--cluster", args.cluster, "--region", args.region],
            env=env, check=True, capture_output=True, text=True,
        ).stdout
        dt = time.monotonic() - t0
        d = json.loads(out)
        check(d["account_id"] == args.account, f"account_id {d['account_id']} != {args.account}")
        check(len(d["public_subnets"]) == 3 and len(d["private_subnets"]) == 3, "subnet count")
        note(f"seed.py took {dt:.2f}s")
        ctx.update(d)
    step("seed (fresh account via access key)", seed)
    if "vpc_id" not in ctx:
        return 1

    def mk_sg():
        ctx["sg"] = ec2.create_security_group(
            GroupName=f"{args.cluster}-alb", Description="smoke", VpcId=ctx["vpc_id"]
        )["GroupId"]
    step("ec2 CreateSecurityGroup in VPC", mk_sg)

    lb_tags = {"elbv2.k8s.aws/cluster": args.cluster, "ingress.k8s.aws/stack": "ns/ing", "Name": "smoke"}

    def create_lb():
        r = elb.create_load_balancer(
            Name="smoke-alb", Subnets=ctx["private_subnets"][:2], SecurityGroups=[ctx["sg"]],
            Scheme="internal", Type="application", IpAddressType="ipv4", Tags=[{"Key": k, "Value": v} for k, v in lb_tags.items()],
        )["LoadBalancers"][0]
        ctx["lb"] = r["LoadBalancerArn"]
        note(f"LB ARN: {r['LoadBalancerArn']}")
        note(f"DNSName: {r.get('DNSName')!r}  CanonicalHostedZoneId: {r.get('CanonicalHostedZoneId')!r}")
        note(f"State: {r.get('State')}  Scheme: {r.get('Scheme')}  VpcId ok: {r.get('VpcId') == ctx['vpc_id']}  "
             f"AZs: {[(a['ZoneName'], a['SubnetId']) for a in r.get('AvailabilityZones', [])]}  SGs: {r.get('SecurityGroups')}")
        check(r["Scheme"] == "internal", "scheme")
        check(r.get("VpcId") == ctx["vpc_id"], "vpc id")
    step("CreateLoadBalancer (internal, 2 subnets, SG, Tags)", create_lb)

    def dup_lb():
        again = elb.create_load_balancer(
            Name="smoke-alb", Subnets=ctx["private_subnets"][:2], SecurityGroups=[ctx["sg"]],
            Scheme="internal", Type="application")["LoadBalancers"][0]
        check(again["LoadBalancerArn"] == ctx["lb"], f"same settings returned a new LB {again['LoadBalancerArn']}")
        code, _ = err_code(lambda: elb.create_load_balancer(
            Name="smoke-alb", Subnets=ctx["private_subnets"][:2], SecurityGroups=[ctx["sg"]],
            Scheme="internet-facing", Type="application"))
        check(code == "DuplicateLoadBalancerName", f"different settings -> {code}")
        check(len(elb.describe_load_balancers(Names=["smoke-alb"])["LoadBalancers"]) == 1, "2 LBs named smoke-alb")
    step("CreateLoadBalancer same name: idempotent / DuplicateLoadBalancerName", dup_lb)

    def tags_lb():
        d = elb.describe_tags(ResourceArns=[ctx["lb"]])["TagDescriptions"]
        got = tagmap(d[0]["Tags"])
        check(got == lb_tags, f"tags from create call: {got}")
    step("DescribeTags returns Tags given in CreateLoadBalancer", tags_lb)

    def add_remove_tags():
        elb.add_tags(ResourceArns=[ctx["lb"]], Tags=[{"Key": "extra", "Value": "1"}])
        elb.remove_tags(ResourceArns=[ctx["lb"]], TagKeys=["Name"])
        got = tagmap(elb.describe_tags(ResourceArns=[ctx["lb"]])["TagDescriptions"][0]["Tags"])
        check(got.get("extra") == "1" and "Name" not in got, f"{got}")
    step("AddTags / RemoveTags", add_remove_tags)

    def lb_attrs():
        elb.modify_load_balancer_attributes(LoadBalancerArn=ctx["lb"], Attributes=[
            {"Key": "idle_timeout.timeout_seconds", "Value": "120"},
            {"Key": "deletion_protection.enabled", "Value": "false"}])
        a = {x["Key"]: x["Value"] for x in elb.describe_load_balancer_attributes(LoadBalancerArn=ctx["lb"])["Attributes"]}
        check(a.get("idle_timeout.timeout_seconds") == "120", f"{a}")
    step("Modify/DescribeLoadBalancerAttributes", lb_attrs)

    def set_sg_subnets():
        sg2 = ec2.create_security_group(GroupName=f"{args.cluster}-alb2", Description="x", VpcId=ctx["vpc_id"])["GroupId"]
        elb.set_security_groups(LoadBalancerArn=ctx["lb"], SecurityGroups=[ctx["sg"], sg2])
        elb.set_subnets(LoadBalancerArn=ctx["lb"], Subnets=ctx["private_subnets"])
        lb = elb.describe_load_balancers(LoadBalancerArns=[ctx["lb"]])["LoadBalancers"][0]
        check(len(lb["SecurityGroups"]) == 2, f"sgs {lb['SecurityGroups']}")
        check(len(lb["AvailabilityZones"]) == 3, f"azs {lb['AvailabilityZones']}")
    step("SetSecurityGroups / SetSubnets", set_sg_subnets)

    def create_tg():
        r = elb.create_target_group(
            Name="smoke-tg", Protocol="HTTP", Port=8080, VpcId=ctx["vpc_id"], TargetType="ip",
            HealthCheckPath="/healthz", Tags=[{"Key": "elbv2.k8s.aws/cluster", "Value": args.cluster}],
        )["TargetGroups"][0]
        ctx["tg"] = r["TargetGroupArn"]
        note(f"TG ARN: {ctx['tg']}")
        again = elb.create_target_group(
            Name="smoke-tg", Protocol="HTTP", Port=8080, VpcId=ctx["vpc_id"], TargetType="ip")["TargetGroups"][0]
        check(again["TargetGroupArn"] == ctx["tg"], "same settings returned a different TG")
        code, _ = err_code(lambda: elb.create_target_group(
            Name="smoke-tg", Protocol="HTTP", Port=9090, VpcId=ctx["vpc_id"], TargetType="ip"))
        check(code == "DuplicateTargetGroupName", f"different settings -> {code}")
    step("CreateTargetGroup (ip, Tags; same name: idempotent / DuplicateTargetGroupName)", create_tg)

    def tg_attrs():
        elb.modify_target_group_attributes(TargetGroupArn=ctx["tg"], Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "10"}])
        a = {x["Key"]: x["Value"] for x in elb.describe_target_group_attributes(TargetGroupArn=ctx["tg"])["Attributes"]}
        check(a.get("deregistration_delay.timeout_seconds") == "10", f"{a}")
    step("Modify/DescribeTargetGroupAttributes", tg_attrs)

    def create_listener():
        r = elb.create_listener(
            LoadBalancerArn=ctx["lb"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "nope"}}],
            Tags=[{"Key": "k", "Value": "listener"}],
        )["Listeners"][0]
        ctx["listener"] = r["ListenerArn"]
        note(f"Listener ARN: {ctx['listener']}")
        check(r["DefaultActions"][0]["Type"] == "fixed-response", f"{r['DefaultActions']}")
    step("CreateListener HTTP:80 fixed-response (Tags)", create_listener)

    def https_listener():
        r = elb.create_listener(
            LoadBalancerArn=ctx["lb"], Protocol="HTTPS", Port=443, SslPolicy="ELBSecurityPolicy-2016-08",
            Certificates=[{"CertificateArn": ctx["certificate_arn"]}],
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        )["Listeners"][0]
        ctx["listener443"] = r["ListenerArn"]
        certs = elb.describe_listener_certificates(ListenerArn=r["ListenerArn"])["Certificates"]
        check(any(c["CertificateArn"] == ctx["certificate_arn"] for c in certs), f"{certs}")
        code, _ = err_code(lambda: elb.create_listener(
            LoadBalancerArn=ctx["lb"], Protocol="HTTPS", Port=8443,
            Certificates=[{"CertificateArn": ctx["certificate_arn"][:-4] + "dead"}],
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]))
        note(f"HTTPS listener with unknown cert ARN -> {code or 'accepted (no ACM validation)'}")
    step("CreateListener HTTPS:443 with seeded ACM cert", https_listener)

    def create_rule():
        r = elb.create_rule(
            ListenerArn=ctx["listener"], Priority=10,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": ctx["tg"]}],
            Tags=[{"Key": "k", "Value": "rule"}],
        )["Rules"][0]
        ctx["rule"] = r["RuleArn"]
        note(f"Rule ARN: {ctx['rule']}")
    step("CreateRule path-pattern -> forward TG (Tags)", create_rule)

    def tg_lb_link():
        tg = elb.describe_target_groups(TargetGroupArns=[ctx["tg"]])["TargetGroups"][0]
        note(f"TG.LoadBalancerArns after rule: {tg.get('LoadBalancerArns')}")
    step("DescribeTargetGroups (observe LoadBalancerArns)", tg_lb_link)

    def tags_multi():
        d = elb.describe_tags(ResourceArns=[ctx["tg"], ctx["listener"], ctx["rule"]])["TagDescriptions"]
        m = {x["ResourceArn"]: tagmap(x["Tags"]) for x in d}
        check(m.get(ctx["tg"]) == {"elbv2.k8s.aws/cluster": args.cluster}, f"tg {m.get(ctx['tg'])}")
        check(m.get(ctx["listener"]) == {"k": "listener"}, f"listener {m.get(ctx['listener'])}")
        check(m.get(ctx["rule"]) == {"k": "rule"}, f"rule {m.get(ctx['rule'])}")
    step("DescribeTags on TG + listener + rule (one call)", tags_multi)

    ips = ["10.0.128.10", "10.0.144.10"]

    def register():
        elb.register_targets(TargetGroupArn=ctx["tg"], Targets=[{"Id": ip, "Port": 8080} for ip in ips])
    step("RegisterTargets (2 IPs)", register)

    def health():
        d = elb.describe_target_health(TargetGroupArn=ctx["tg"])["TargetHealthDescriptions"]
        got = sorted(x["Target"]["Id"] for x in d)
        note("DescribeTargetHealth: " + ", ".join(
            f"{x['Target']['Id']}:{x['Target'].get('Port')} AZ={x['Target'].get('AvailabilityZone')} "
            f"{x['TargetHealth']}" for x in d))
        check(got == sorted(ips), f"targets {got}")
    step("DescribeTargetHealth", health)

    def modify_rule():
        elb.modify_rule(
            RuleArn=ctx["rule"],
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/v2/*", "/api/*"]}},
                        {"Field": "host-header", "HostHeaderConfig": {"Values": ["app.example.com"]}}],
            Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": ctx["tg"], "Weight": 1}]}}],
        )
        r = [x for x in elb.describe_rules(ListenerArn=ctx["listener"])["Rules"] if x["RuleArn"] == ctx["rule"]][0]
        fields = sorted(c["Field"] for c in r["Conditions"])
        pp = [c for c in r["Conditions"] if c["Field"] == "path-pattern"][0]
        vals = pp.get("PathPatternConfig", {}).get("Values") or pp.get("Values")
        note(f"after ModifyRule: conditions={json.dumps(r['Conditions'])} actions={json.dumps(r['Actions'])}")
        check(fields == ["host-header", "path-pattern"], f"fields {fields}")
        check(sorted(vals) == ["/api/*", "/v2/*"], f"path values {vals}")
    step("ModifyRule (conditions + ForwardConfig)", modify_rule)

    def set_prio():
        r2 = elb.create_rule(
            ListenerArn=ctx["listener"], Priority=20,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/other"]}}],
            Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}],
        )["Rules"][0]["RuleArn"]
        ctx["rule2"] = r2
        elb.set_rule_priorities(RulePriorities=[
            {"RuleArn": ctx["rule"], "Priority": 30}, {"RuleArn": r2, "Priority": 5}])
        pr = {x["RuleArn"]: x["Priority"] for x in elb.describe_rules(ListenerArn=ctx["listener"])["Rules"]}
        check(pr[ctx["rule"]] == "30" and pr[r2] == "5", f"{pr}")
        check(any(v == "default" for v in pr.values()), f"default rule missing: {pr}")
        code, _ = err_code(lambda: elb.create_rule(
            ListenerArn=ctx["listener"], Priority=5,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/dup"]}}],
            Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]))
        note(f"CreateRule with a taken priority -> {code}")
    step("SetRulePriorities (swap 2 rules)", set_prio)

    def modify_listener():
        elb.modify_listener(ListenerArn=ctx["listener"], DefaultActions=[
            {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"}}])
        l = elb.describe_listeners(ListenerArns=[ctx["listener"]])["Listeners"][0]
        check(l["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "503", f"{l['DefaultActions']}")
    step("ModifyListener default action", modify_listener)

    def tagging_api():
        res = tagging.get_resources(ResourceTypeFilters=["elasticloadbalancing:loadbalancer"])["ResourceTagMappingList"]
        arns = [r["ResourceARN"] for r in res]
        note(f"ResourceGroupsTaggingAPI GetResources(elasticloadbalancing:loadbalancer) -> {len(arns)} ARNs, ours included: {ctx['lb'] in arns}")
        res2 = tagging.get_resources(TagFilters=[{"Key": "elbv2.k8s.aws/cluster", "Values": [args.cluster]}])["ResourceTagMappingList"]
        arns2 = sorted(r["ResourceARN"] for r in res2)
        note(f"GetResources(TagFilters elbv2.k8s.aws/cluster={args.cluster}) -> {arns2}")
        res3 = tagging.get_resources(ResourceTypeFilters=["elasticloadbalancing:targetgroup"])["ResourceTagMappingList"]
        note(f"GetResources(elasticloadbalancing:targetgroup) -> {len(res3)} ARNs, ours included: {ctx['tg'] in [r['ResourceARN'] for r in res3]}")
    step("ResourceGroupsTaggingAPI GetResources (observe)", tagging_api)

    def paging():
        extra = []
        for i in range(4):
            extra.append(elb.create_load_balancer(
                Name=f"smoke-page-{i}", Subnets=ctx["public_subnets"][:2], Scheme="internet-facing",
                Type="application")["LoadBalancers"][0]["LoadBalancerArn"])
        ctx["extra_lbs"] = extra
        seen, marker, pages, markers = [], None, 0, []
        while True:
            kw = {"PageSize": 2}
            if marker:
                kw["Marker"] = marker
            r = elb.describe_load_balancers(**kw)
            pages += 1
            seen += [x["LoadBalancerArn"] for x in r["LoadBalancers"]]
            marker = r.get("NextMarker")
            markers.append(marker)
            if not marker or pages > 10:
                break
        note(f"describe_load_balancers PageSize=2: pages={pages} items={len(seen)} NextMarkers={markers}")
        check(len(seen) == 5 and len(set(seen)) == 5, f"paged {len(seen)} ({len(set(seen))} unique) of 5")
        pg = elb.get_paginator("describe_load_balancers").paginate(PaginationConfig={"PageSize": 2})
        check(sum(len(p["LoadBalancers"]) for p in pg) == 5, "boto3 paginator")
    step("DescribeLoadBalancers paging (PageSize/Marker, 5 LBs)", paging)

    def not_found():
        code, status = err_code(lambda: elb.describe_load_balancers(Names=["does-not-exist"]))
        note(f"DescribeLoadBalancers(Names=[missing]) -> {code} HTTP {status}")
        check(code == "LoadBalancerNotFound", code)
        code, status = err_code(lambda: elb.describe_target_groups(Names=["does-not-exist"]))
        note(f"DescribeTargetGroups(Names=[missing]) -> {code} HTTP {status}")
        check(code == "TargetGroupNotFound", code)
    step("NotFound error codes", not_found)

    def isolation():
        o = session(args.other_account)
        oe, o2 = o.client("elbv2"), o.client("ec2")
        other_lbs = [x["LoadBalancerArn"] for x in oe.describe_load_balancers()["LoadBalancers"]]
        check(ctx["lb"] not in other_lbs, "other account sees our LB")
        code, _ = err_code(lambda: oe.describe_load_balancers(LoadBalancerArns=[ctx["lb"]]))
        check(code == "LoadBalancerNotFound", f"describe our LB ARN from other account -> {code}")
        code, _ = err_code(lambda: o2.describe_vpcs(VpcIds=[ctx["vpc_id"]]))
        check(code == "InvalidVpcID.NotFound", f"describe our VPC from other account -> {code}")
        code, _ = err_code(lambda: o2.describe_subnets(SubnetIds=ctx["public_subnets"][:1]))
        check(code == "InvalidSubnetID.NotFound", f"describe our subnet from other account -> {code}")
        # other account can create an LB with the same name without conflict
        code, _ = err_code(lambda: oe.create_load_balancer(Name="smoke-alb", Subnets=ctx["public_subnets"][:2]))
        note(f"other account CreateLoadBalancer with our subnet ids -> {code or 'OK (!)'}")
        check(code is not None, "other account could use our subnets")
    step("per-access-key account isolation (ec2 + elbv2)", isolation)

    def cleanup():
        elb.deregister_targets(TargetGroupArn=ctx["tg"], Targets=[{"Id": ips[0], "Port": 8080}])
        left = [x["Target"]["Id"] for x in elb.describe_target_health(TargetGroupArn=ctx["tg"])["TargetHealthDescriptions"]]
        note(f"after DeregisterTargets(1): targets={left}")
        for r in ("rule", "rule2"):
            elb.delete_rule(RuleArn=ctx[r])
        elb.delete_listener(ListenerArn=ctx["listener"])
        elb.delete_listener(ListenerArn=ctx["listener443"])
        code, _ = err_code(lambda: elb.delete_target_group(TargetGroupArn=ctx["tg"]))
        note(f"DeleteTargetGroup while LB exists (rules/listeners gone) -> {code or 'OK'}")
        for arn in [ctx["lb"], *ctx.get("extra_lbs", [])]:
            elb.delete_load_balancer(LoadBalancerArn=arn)
        if code:
            elb.delete_target_group(TargetGroupArn=ctx["tg"])
        check(elb.describe_load_balancers()["LoadBalancers"] == [], "LBs left")
        check(elb.describe_target_groups()["TargetGroups"] == [], "TGs left")
        code, _ = err_code(lambda: elb.delete_load_balancer(LoadBalancerArn=ctx["lb"]))
        note(f"DeleteLoadBalancer twice -> {code or 'OK (idempotent, like AWS)'}")
    step("DeregisterTargets, DeleteRule/Listener/LB/TG", cleanup)

    ok = sum(1 for _, p in RESULTS if p)
    bad = len(RESULTS) - ok
    print(f"{ok} passed, {bad} failed")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
