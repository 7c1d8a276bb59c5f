//! The Helm chart (deploy/chart): `helm lint` passes, and deploy/manifests.yaml is exactly
//! the chart's rendering (`make manifests`), so the two cannot drift apart.
//!
//! Helm is `$HELM` if set (hack/test.sh sets it), else built and cached by hack/helm/install.sh.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The arguments of `make manifests` after `helm` (keep in sync with the Makefile).
const TEMPLATE_ARGS: &[&str] = &[
    "template",
    "alb-controller",
    "deploy/chart",
    "--namespace",
    "kube-system",
    "--set",
    "clusterName=my-cluster",
    "--set",
    "vpcId=vpc-0123456789abcdef0",
    "--set-string",
    r"serviceAccount.annotations.eks\.amazonaws\.com/role-arn=arn:aws:iam::111122223333:role/AlbControllerRole",
];

fn helm() -> PathBuf {
    if let Some(h) = std::env::var_os("HELM").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let out = Command::new(Path::new(REPO).join("hack/helm/install.sh")).current_dir(REPO).output().expect("running hack/helm/install.sh");
    assert!(out.status.success(), "hack/helm/install.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(stdout.lines().last().expect("hack/helm/install.sh printed no path").trim())
}

fn run_helm(args: &[&str]) -> String {
    let out = Command::new(helm()).args(args).current_dir(REPO).output().expect("running helm");
    assert!(
        out.status.success(),
        "helm {}:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_chart_passes_helm_lint() {
    run_helm(&["lint", "deploy/chart", "--set", "clusterName=x", "--set", "vpcId=vpc-1"]);
    // With the readiness-gate webhook: its Secret, Service and MutatingWebhookConfiguration.
    run_helm(&["lint", "deploy/chart", "--set", "clusterName=x", "--set", "vpcId=vpc-1", "--set", "webhook.enabled=true"]);
    let rendered =
        run_helm(&["template", "t", "deploy/chart", "--set", "clusterName=x", "--set", "vpcId=vpc-1", "--set", "webhook.enabled=true"]);
    for part in ["kind: MutatingWebhookConfiguration", "failurePolicy: Ignore", "--webhook-cert-file=/tls/tls.crt", "kind: Secret"] {
        assert!(rendered.contains(part), "{part} missing from the webhook rendering");
    }
}

#[test]
fn deploy_manifests_are_the_charts_rendering() {
    let rendered = run_helm(TEMPLATE_ARGS);
    let committed = std::fs::read_to_string(Path::new(REPO).join("deploy/manifests.yaml")).unwrap();
    // The header is the leading comment lines; helm's output starts with `---`.
    let body: String = committed.split_inclusive('\n').skip_while(|l| l.starts_with('#')).collect();
    assert!(body == rendered, "deploy/manifests.yaml is not the chart's rendering: run `make manifests`\n--- rendered ---\n{rendered}");
}

#[test]
fn aws_budget_values_become_budget_flags() {
    let rendered = run_helm(&[
        "template",
        "t",
        "deploy/chart",
        "--set",
        "clusterName=x",
        "--set",
        "vpcId=vpc-1",
        "--set-string",
        "awsBudget.elbv2-write=2:1",
        "--set-string",
        "awsBudget.ec2-describe=off",
    ]);
    for flag in ["- --aws-budget-elbv2-write=2:1", "- --aws-budget-ec2-describe=off"] {
        assert!(rendered.contains(flag), "{flag} missing from\n{rendered}");
    }
    // Unset: no flag, the controller's defaults (AWS's documented limits).
    let plain = run_helm(&["template", "t", "deploy/chart", "--set", "clusterName=x", "--set", "vpcId=vpc-1"]);
    assert!(!plain.contains("--aws-budget-"), "{plain}");
}

#[test]
fn cluster_name_and_vpc_id_are_required() {
    let out = Command::new(helm()).args(["template", "x", "deploy/chart"]).current_dir(REPO).output().expect("running helm");
    assert!(!out.status.success(), "helm template without clusterName/vpcId must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is required"), "{}", String::from_utf8_lossy(&out.stderr));
}

fn file_names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(Path::new(REPO).join(dir)).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn the_charts_crds_are_deploy_crds() {
    let read = |p: &str| std::fs::read_to_string(Path::new(REPO).join(p)).unwrap();
    let names = file_names("deploy/crds");
    assert_eq!(file_names("deploy/chart/crds"), names, "deploy/chart/crds and deploy/crds hold different files: copy them");
    for crd in ["ingressclassparams", "loadbalancerconfigurations", "targetgroupconfigurations", "listenerruleconfigurations"] {
        assert!(names.contains(&format!("{crd}.yaml")), "deploy/crds/{crd}.yaml missing: run `cargo run -- crd --out-dir deploy/crds`");
    }
    for name in names {
        assert!(
            read(&format!("deploy/chart/crds/{name}")) == read(&format!("deploy/crds/{name}")),
            "deploy/chart/crds/{name} differs from deploy/crds/: copy it"
        );
    }
}

/// The rules of the rendered ClusterRole, as (apiGroup, resource, verb) triples.
fn cluster_role_rules(rendered: &str) -> Vec<(String, String, String)> {
    let role = serde_yaml::Deserializer::from_str(rendered)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .find(|doc| doc["kind"] == "ClusterRole")
        .expect("a ClusterRole");
    let strings =
        |v: &serde_yaml::Value| -> Vec<String> { v.as_sequence().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect() };
    let mut triples = Vec::new();
    for rule in role["rules"].as_sequence().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    triples.push((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    triples
}

#[test]
fn the_cluster_role_grants_the_gateway_api_and_lbcs_gateway_crds() {
    let rules = cluster_role_rules(&run_helm(TEMPLATE_ARGS));
    let allows =
        |group: &str, resource: &str, verb: &str| rules.iter().any(|(g, r, v)| g == group && r == resource && (v == verb || v == "*"));
    for resource in ["gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"] {
        for verb in ["get", "list", "watch"] {
            assert!(allows("gateway.networking.k8s.io", resource, verb), "{verb} {resource}");
        }
    }
    for status in ["gatewayclasses/status", "gateways/status", "httproutes/status", "grpcroutes/status"] {
        assert!(allows("gateway.networking.k8s.io", status, "patch"), "patch {status}");
    }
    assert!(allows("gateway.networking.k8s.io", "gateways", "patch"), "patch gateways (finalizers)");
    for resource in ["loadbalancerconfigurations", "targetgroupconfigurations", "listenerruleconfigurations"] {
        for verb in ["get", "list", "watch"] {
            assert!(allows("gateway.k8s.aws", resource, verb), "{verb} {resource}");
        }
        assert!(allows("gateway.k8s.aws", &format!("{resource}/status"), "patch"), "patch {resource}/status");
    }
    assert!(!allows("gateway.networking.k8s.io", "gateways", "delete"), "the controller never deletes Gateways");
}

#[test]
fn feature_gates_value_becomes_the_flag() {
    let base = ["template", "t", "deploy/chart", "--set", "clusterName=x", "--set", "vpcId=vpc-1"];
    let without = run_helm(&base);
    assert!(!without.contains("--feature-gates"), "no flag without gates");
    let mut args = base.to_vec();
    args.extend([
        "--set",
        "controllerConfig.featureGates.ALBGatewayAPI=false",
        "--set",
        "controllerConfig.featureGates.ALBSingleSubnet=true",
    ]);
    let with = run_helm(&args);
    assert!(with.contains("- --feature-gates=ALBGatewayAPI=false,ALBSingleSubnet=true\n"), "{with}");
}
