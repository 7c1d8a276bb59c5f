#!/usr/bin/env python3
"""Seed an AWS account in LocalStack with what the ALB controller expects to find.

Usage: seed.py --cluster NAME [--region us-east-1] [--nodes N]

Uses AWS_ENDPOINT_URL and whatever AWS_ACCESS_KEY_ID is in the environment: LocalStack
maps each distinct 12-digit access key id to its own account, so tests isolate by
choosing a key. Creates (or reuses, if this cluster was already seeded in this
account) a VPC 10.0.0.0/16, 3 public + 3 private subnets in <region>a/b/c with the
Kubernetes discovery tags, and an imported self-signed ACM certificate for
*.example.com (SAN example.com). Prints one JSON object on stdout.

With --nodes N it also makes N worker nodes as EKS would: EC2 instances spread over the
private subnets with the cluster security group (eks-cluster-sg-<cluster>, tagged for the
cluster), each holding a block of pod addresses on its network interface as the VPC CNI does
(prefix delegation assigns /28 prefixes to the interface; the emulator has no prefixes, so
the block's addresses are assigned one by one as secondary private IPs). The block is the
node's podCIDR, from which KWOK gives pods their IPs. The Node objects themselves are made
from the printed "nodes" by the caller (tests/support, hack/nodes.sh).
"""

import argparse
import datetime
import json
import os
import sys

import boto3
from botocore.config import Config

AZ_SUFFIXES = ("a", "b", "c")
PUBLIC_CIDRS = ("10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20")
PRIVATE_CIDRS = ("10.0.128.0/20", "10.0.144.0/20", "10.0.160.0/20")
SEED_TAG = "alb-bed/seed"  # marks resources created by this script (value: cluster name)
NODE_TAG = "alb-bed/node"  # marks the instances that are nodes (value: cluster name)
POD_BLOCK_PREFIX = 26  # each node's podCIDR: 64 addresses, 62 of them for pods
INSTANCE_TYPE = "m5.large"


def self_signed_cert(domain: str, sans: list[str]) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in [domain, *sans]]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )


def tags(d: dict) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in d.items()]


def node_info(instance: dict, region: str) -> dict:
    eni = instance["NetworkInterfaces"][0]
    primary = instance["PrivateIpAddress"]
    block = next(t["Value"] for t in instance.get("Tags", []) if t["Key"] == "alb-bed/pod-cidr")
    az = instance["Placement"]["AvailabilityZone"]
    return {
        # EKS's "resource name" hostnames: unique however many clusters share the bed
        "name": f"{instance['InstanceId']}.{region}.compute.internal",
        "instance_id": instance["InstanceId"],
        "provider_id": f"aws:///{az}/{instance['InstanceId']}",
        "zone": az,
        "instance_type": instance["InstanceType"],
        "private_ip": primary,
        "eni_id": eni["NetworkInterfaceId"],
        "pod_cidr": block,
        "max_pods": (1 << (32 - POD_BLOCK_PREFIX)) - 2,
    }


def seed_nodes(ec2, args, vpc_id: str, private: list[str], cluster_tag: str) -> list[dict]:
    import ipaddress
    import random

    # The cluster security group, as EKS makes it and tags it.
    sg_name = f"eks-cluster-sg-{args.cluster}"
    groups = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [sg_name]}])["SecurityGroups"]
    if groups:
        sg_id = groups[0]["GroupId"]
    else:
        sg_id = ec2.create_security_group(
            GroupName=sg_name, Description="EKS created security group applied to ENI attached to EKS worker nodes",
            VpcId=vpc_id, TagSpecifications=[{"ResourceType": "security-group",
                                              "Tags": tags({cluster_tag: "owned", "Name": sg_name, SEED_TAG: args.cluster})}],
        )["GroupId"]

    have = [
        i for r in ec2.describe_instances(Filters=[
            {"Name": f"tag:{NODE_TAG}", "Values": [args.cluster]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
        for i in r["Instances"]
    ]
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=private)["Subnets"]}
    used = {t["Value"] for i in have for t in i.get("Tags", []) if t["Key"] == "alb-bed/pod-cidr"}
    image = (ec2.describe_images().get("Images") or [{"ImageId": "ami-12c6146b"}])[0]["ImageId"]
    for n in range(len(have), args.nodes):
        subnet_id = private[n % len(private)]
        net = ipaddress.ip_network(subnets[subnet_id]["CidrBlock"])
        # Pod blocks anywhere in the subnet but its first block (which holds the nodes' own
        # addresses), picked at random so that beds of different tests rarely share one.
        blocks = [b for b in list(net.subnets(new_prefix=POD_BLOCK_PREFIX))[1:] if str(b) not in used]
        block = random.choice(blocks)
        used.add(str(block))
        instance = ec2.run_instances(
            ImageId=image, InstanceType=INSTANCE_TYPE, MinCount=1, MaxCount=1, SubnetId=subnet_id,
            SecurityGroupIds=[sg_id],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags({
                "Name": f"{args.cluster}-node-{n}", cluster_tag: "owned", NODE_TAG: args.cluster,
                "alb-bed/pod-cidr": str(block)})}],
        )["Instances"][0]
        pods = [str(ip) for ip in block.hosts()]
        ec2.assign_private_ip_addresses(
            NetworkInterfaceId=instance["NetworkInterfaces"][0]["NetworkInterfaceId"], PrivateIpAddresses=pods)
        have.append(instance)
    return [node_info(i, args.region) for i in have[: args.nodes]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--nodes", type=int, default=0, help="worker nodes to have (EC2 instances with pod addresses)")
    ap.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    args = ap.parse_args()
    if not os.environ.get("AWS_ENDPOINT_URL"):
        print("seed.py: AWS_ENDPOINT_URL is not set (source $BED_DIR/localstack.env)", file=sys.stderr)
        return 2

    cfg = Config(retries={"max_attempts": 2, "mode": "standard"})
    sess = boto3.session.Session(region_name=args.region)
    ec2 = sess.client("ec2", config=cfg)
    acm = sess.client("acm", config=cfg)
    sts = sess.client("sts", config=cfg)
    cluster_tag = f"kubernetes.io/cluster/{args.cluster}"

    account_id = sts.get_caller_identity()["Account"]

    # --- VPC (reuse if this cluster was already seeded in this account) ---
    existing = ec2.describe_vpcs(
        Filters=[{"Name": f"tag:{SEED_TAG}", "Values": [args.cluster]}]
    )["Vpcs"]
    if existing:
        vpc_id = existing[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(
            CidrBlock="10.0.0.0/16",
            TagSpecifications=[{
                "ResourceType": "vpc",
                "Tags": tags({"Name": f"{args.cluster}-vpc", cluster_tag: "shared", SEED_TAG: args.cluster}),
            }],
        )["Vpc"]["VpcId"]

    # --- subnets ---
    have = {
        t["Value"]: s["SubnetId"]
        for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        for t in s.get("Tags", [])
        if t["Key"] == "Name"
    }
    public, private = [], []
    for kind, cidrs, role, out in (
        ("public", PUBLIC_CIDRS, "kubernetes.io/role/elb", public),
        ("private", PRIVATE_CIDRS, "kubernetes.io/role/internal-elb", private),
    ):
        for suffix, cidr in zip(AZ_SUFFIXES, cidrs):
            az = f"{args.region}{suffix}"
            name = f"{kind}-{az}"
            if name in have:
                out.append(have[name])
                continue
            out.append(ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=cidr,
                AvailabilityZone=az,
                TagSpecifications=[{
                    "ResourceType": "subnet",
                    "Tags": tags({role: "1", cluster_tag: "shared", "Name": name, SEED_TAG: args.cluster}),
                }],
            )["Subnet"]["SubnetId"])

    # --- ACM certificate ---
    cert_arn = None
    for page in acm.get_paginator("list_certificates").paginate():
        for c in page["CertificateSummaryList"]:
            if c.get("DomainName") != "*.example.com":
                continue
            t = acm.list_tags_for_certificate(CertificateArn=c["CertificateArn"]).get("Tags", [])
            if {"Key": SEED_TAG, "Value": args.cluster} in t:
                cert_arn = c["CertificateArn"]
    if cert_arn is None:
        cert_pem, key_pem = self_signed_cert("*.example.com", ["example.com"])
        cert_arn = acm.import_certificate(
            Certificate=cert_pem,
            PrivateKey=key_pem,
            Tags=[{"Key": SEED_TAG, "Value": args.cluster}, {"Key": cluster_tag, "Value": "owned"}],
        )["CertificateArn"]

    nodes = seed_nodes(ec2, args, vpc_id, private, cluster_tag) if args.nodes else []

    json.dump(
        {
            "vpc_id": vpc_id,
            "nodes": nodes,
            "public_subnets": public,
            "private_subnets": private,
            "certificate_arn": cert_arn,
            "account_id": account_id,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
