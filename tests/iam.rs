//! The IAM policy in iam/ grants exactly what the code calls: every AWS operation the
//! counted call path names (`aws.call(SERVICE, "Operation", …)`) is allowed, and the
//! policy allows nothing else (but the tagging that creates with tags need).

use std::collections::BTreeSet;
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `elasticloadbalancing:CreateRule`, … for every `.call(SERVICE, "Operation"` in src/.
fn operations_in_code() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut ops = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, _) in text.match_indices(".call(") {
            let rest = &text[i + 6..];
            let Some((service, rest)) = rest.split_once(',') else { continue };
            let prefix = match service.trim() {
                "ELBV2" | "\"elasticloadbalancingv2\"" => "elasticloadbalancing",
                "EC2" | "\"ec2\"" => "ec2",
                "\"acm\"" => "acm",
                _ => continue,
            };
            let op = rest.trim_start().trim_start_matches('"');
            let op: String = op.chars().take_while(char::is_ascii_alphanumeric).collect();
            if !op.is_empty() {
                ops.insert(format!("{prefix}:{op}"));
            }
        }
    }
    ops
}

fn actions_in_policy() -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("iam/policy.json")).unwrap();
    let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = BTreeSet::new();
    for st in policy["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow");
        match &st["Action"] {
            serde_json::Value::String(a) => drop(out.insert(a.clone())),
            serde_json::Value::Array(list) => out.extend(list.iter().map(|a| a.as_str().unwrap().to_string())),
            other => panic!("unexpected Action {other}"),
        }
    }
    out
}

/// Operations the controllers of the integration tests called (tests/support records them
/// from each controller's metrics when its bed ends; those tests run before this one).
#[test]
fn every_operation_called_in_the_integration_run_is_allowed() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aws-operations");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no recorded operations in {} (integration tests not run): skipped", dir.display());
        return;
    };
    let policy = actions_in_policy();
    let mut called = BTreeSet::new();
    for e in entries.flatten() {
        for line in std::fs::read_to_string(e.path()).unwrap_or_default().lines() {
            let Some((service, op)) = line.split_once(':') else { continue };
            let prefix = match service {
                "elasticloadbalancingv2" => "elasticloadbalancing",
                other => other,
            };
            called.insert(format!("{prefix}:{op}"));
        }
    }
    let missing: Vec<_> = called.iter().filter(|a| !policy.contains(*a)).collect();
    assert!(missing.is_empty(), "called in the integration run but not allowed by iam/policy.json: {missing:?}");
    eprintln!("{} operations called in the integration run, all allowed", called.len());
}

#[test]
fn the_policy_grants_exactly_what_the_code_calls() {
    let code = operations_in_code();
    assert!(code.len() > 30, "found {} operations in the code", code.len());
    // Tags given in create calls need these too.
    let implicit: BTreeSet<String> = ["elasticloadbalancing:AddTags", "ec2:CreateTags"].iter().map(|s| s.to_string()).collect();
    let policy = actions_in_policy();
    let missing: Vec<_> = code.union(&implicit).filter(|a| !policy.contains(*a)).collect();
    let extra: Vec<_> = policy.iter().filter(|a| !code.contains(*a) && !implicit.contains(*a)).collect();
    assert!(missing.is_empty(), "the code calls these, the policy does not allow them: {missing:?}");
    assert!(extra.is_empty(), "the policy allows these, the code never calls them: {extra:?}");
}
