#!/usr/bin/env python3
"""Node objects for the worker nodes localstack/seed.py made, as EKS registers them.

Usage: seed.py ... --nodes N | hack/nodes.py [--pool NAME] | kubectl create -f -

Reads seed.py's JSON on stdin and prints a v1 List of Nodes on stdout: the instance's
providerID, zone and instance type labels, its private IP as InternalIP, its pod address
block as podCIDR, and KWOK's annotation, so that KWOK runs them (heartbeats, pods). With
--pool, every node gets the label alb-bed/pool=NAME: a namespace annotated
scheduler.alpha.kubernetes.io/node-selector=alb-bed/pool=NAME (the PodNodeSelector
admission plugin) schedules its pods onto these nodes only, which is how tests sharing one
API server each keep their pods on the nodes of their own AWS account.
"""

import argparse
import json
import sys


def node(n: dict, region: str, pool: str | None) -> dict:
    labels = {
        "kubernetes.io/hostname": n["name"],
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": n["instance_type"],
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": n["zone"],
        "type": "kwok",
    }
    if pool:
        labels["alb-bed/pool"] = pool
    resources = {"cpu": "2", "memory": "8Gi", "pods": str(n["max_pods"])}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": n["name"], "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "spec": {"providerID": n["provider_id"], "podCIDR": n["pod_cidr"], "podCIDRs": [n["pod_cidr"]]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": n["private_ip"]},
                {"type": "Hostname", "address": n["name"]},
                {"type": "InternalDNS", "address": n["name"]},
            ],
            "allocatable": resources,
            "capacity": resources,
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", help="label alb-bed/pool=POOL on every node")
    ap.add_argument("--region", default="us-east-1")
    args = ap.parse_args()
    seed = json.load(sys.stdin)
    items = [node(n, args.region, args.pool) for n in seed.get("nodes", [])]
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
