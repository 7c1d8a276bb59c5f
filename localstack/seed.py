#!/usr/bin/env python3
"""Seed an AWS account in LocalStack with what the ALB controller expects to find.

Usage: seed.py --cluster NAME [--region us-east-1]

Uses AWS_ENDPOINT_URL and whatever AWS_ACCESS_KEY_ID is in the environment: LocalStack
maps each distinct 12-digit access key id to its own account, so tests isolate by
choosing a key. Creates (or reuses, if this cluster was already seeded in this
account) a VPC 10.0.0.0/16, 3 public + 3 private subnets in <region>a/b/c with the
Kubernetes discovery tags, and an imported self-signed ACM certificate for
*.example.com (SAN example.com). Prints one JSON object on stdout.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cluster", required=True)
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

    json.dump(
        {
            "vpc_id": vpc_id,
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
