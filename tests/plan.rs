//! `alb-controller plan` on files: no cluster, no AWS.

use std::process::Command;

fn plan(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_alb-controller")).arg("plan").args(args).output().unwrap();
    assert!(out.stderr.is_empty() || out.status.code() == Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap())
}

const ENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/plan-env.yaml");

#[test]
fn every_example_plans_cleanly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut planned = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let (code, out) = plan(&["-f", path.to_str().unwrap(), "--env", ENV]);
        assert_eq!(code, 0, "{}:\n{out}", path.display());
        planned += out.matches("Load balancer ").count();
    }
    assert!(planned >= 6, "the examples plan {planned} load balancers");
}

#[test]
fn json_output_lists_the_stacks() {
    let (code, out) = plan(&["-f", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/group.yaml"), "--env", ENV, "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let lb = &v["loadBalancers"][0];
    assert_eq!(lb["group"], "storefront");
    let rules = lb["stack"]["listeners"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0]["action"]["type"], "fixed-response", "group.order -1 first");
}

#[test]
fn problems_print_as_their_events_and_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bad, namespace: web, annotations: {alb.ingress.kubernetes.io/scheme: public}}
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#,
    )
    .unwrap();
    let (code, out) = plan(&["-f", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            r#"Warning  FailedBuildModel  web/bad: annotation alb.ingress.kubernetes.io/scheme: unknown scheme "public": must be "internal" or "internet-facing""#
        ),
        "{out}"
    );
}
