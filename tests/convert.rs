//! `alb-controller convert` on every Ingress fixture of `tests/fixtures`: for each one it
//! converts, `plan` of the Ingresses and `plan` of the Gateway API objects must show the
//! same load balancers (listeners, rules in order, default actions, scheme, and the target
//! group settings convert carries); the ones it refuses are listed with its reasons.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// How many fixtures convert today (10 of the 52 with Ingresses of the `alb` class): most of
/// the rest set load balancer or target group options that need LBC's configuration CRDs
/// (not in this build), or rules the Gateway API's precedence would order differently.
const MIN_CONVERTED: usize = 10;

const BIN: &str = env!("CARGO_BIN_EXE_alb-controller");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fixtures with Ingresses, sorted by name.
fn ingress_fixtures() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && p.file_name().is_some_and(|n| n != "env.yaml"))
        .filter(|p| std::fs::read_to_string(p).unwrap().lines().any(|l| l.trim() == "kind: Ingress"))
        .collect();
    out.sort();
    out
}

/// `plan -o json` of files, against the snapshot environment; the controller's flag
/// `--default-target-type ip` for both sides, as convert is told.
fn plan(files: &Path) -> Value {
    let out = Command::new(BIN)
        .current_dir(root())
        .args(["plan", "-o", "json", "--env", "tests/fixtures/env.yaml", "--cluster-name", "snap", "--default-target-type", "ip", "-f"])
        .arg(files)
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "plan {}: {}", files.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The Services of a manifest file, as JSON.
fn services(fixture: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| v["kind"] == "Service")
        .collect()
}

/// `namespace-name:port` with a named Service port as its number (an Ingress names the port
/// as written; a backendRef by number).
fn service_port_number(services: &[Value], service_port: &str) -> String {
    let (service, port) = service_port.rsplit_once(':').unwrap();
    let number = services
        .iter()
        .filter(|s| {
            format!("{}-{}", s["metadata"]["namespace"].as_str().unwrap_or("default"), s["metadata"]["name"].as_str().unwrap()) == service
        })
        .flat_map(|s| s["spec"]["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"] == port)
        .map(|p| p["port"].to_string());
    format!("{service}:{}", number.unwrap_or_else(|| port.to_string()))
}

/// A target group as convert carries it: (Service namespace-name:port, port, protocol,
/// target type). The Service comes out of the resource ID, which names the Ingress (or the
/// Gateway and route) first: `ns/ingress-svc:port` or `gwns/gw:routens-route:HTTPRoute-svcns-svc:port`.
fn target_group(lb: &Value, services: &[Value], name: &str) -> Value {
    let tgs = lb["stack"]["target_groups"].as_array().unwrap();
    let tg = tgs.iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no target group {name}"));
    let id = tg["resource_id"].as_str().unwrap();
    let members: Vec<&str> = lb["ingresses"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    let group = lb["group"].as_str().unwrap();
    let service = match group.strip_prefix("Gateway ") {
        Some(gw) => members
            .iter()
            .filter_map(|m| m.strip_prefix("HTTPRoute "))
            .filter_map(|route| id.strip_prefix(&format!("{gw}:{}:HTTPRoute-", route.replacen('/', "-", 1))))
            .next()
            .map(str::to_string),
        None => members
            .iter()
            .filter_map(|m| id.strip_prefix(&format!("{m}-")).map(|svc| format!("{}-{svc}", m.split('/').next().unwrap())))
            .max_by_key(|s| std::cmp::Reverse(s.len())),
    };
    let service = service.unwrap_or_else(|| panic!("target group {id} names none of {members:?}"));
    json!([service_port_number(services, &service), tg["port"], tg["protocol"], tg["target_type"]])
}

fn action(lb: &Value, services: &[Value], a: &Value) -> Value {
    if a["type"] == "redirect" {
        // ALB's defaults (what AWS fills in for a field left out) are the same as unset.
        let mut a = a.clone();
        for (field, default) in
            [("protocol", "#{protocol}"), ("host", "#{host}"), ("port", "#{port}"), ("path", "/#{path}"), ("query", "#{query}")]
        {
            if a[field] == default {
                a[field] = Value::Null;
            }
        }
        return a;
    }
    if a["type"] != "forward" {
        return a.clone();
    }
    let mut tgs: Vec<Value> = a["target_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!([target_group(lb, services, t["target_group"].as_str().unwrap()), t["weight"]]))
        .collect();
    tgs.sort_by_key(|t| t.to_string());
    json!({"forward": tgs, "stickiness": a["stickiness_seconds"]})
}

/// What must be the same: scheme; listeners (port, protocol); per listener the rules in
/// order (conditions as sets) and the default action; target groups by Service and port.
fn shape(lb: &Value, services: &[Value]) -> Value {
    let stack = &lb["stack"];
    let listeners: Vec<Value> = stack["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let rules: Vec<Value> = l["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let conditions: BTreeSet<String> = r["conditions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| {
                            let mut c = c.clone();
                            if let Some(values) = c["values"].as_array_mut() {
                                values.sort_by_key(|v| v.to_string());
                            }
                            c.to_string()
                        })
                        .collect();
                    json!({"conditions": conditions, "action": action(lb, services, &r["action"])})
                })
                .collect();
            let mut rules = rules;
            let mut default = action(lb, services, &l["default_action"]);
            // A last rule that matches every request is the default action in effect: an
            // Ingress's defaultBackend becomes such a rule on a Gateway (its listeners' own
            // default stays the fixed 404 no request reaches).
            let catch_all: BTreeSet<String> = [json!({"field": "path-pattern", "values": ["/*"]}).to_string()].into();
            if default["type"] == "fixed-response"
                && default["status_code"] == "404"
                && rules.last().is_some_and(|r| r["conditions"] == json!(catch_all))
            {
                default = rules.pop().unwrap()["action"].clone();
            }
            json!({"port": l["port"], "protocol": l["protocol"], "rules": rules, "default": default})
        })
        .collect();
    json!({"scheme": stack["load_balancer"]["scheme"], "listeners": listeners})
}

fn shapes(planned: &Value, services: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = planned["loadBalancers"].as_array().unwrap().iter().map(|lb| shape(lb, services)).collect();
    out.sort_by_key(|s| s.to_string());
    out
}

enum Outcome {
    /// Converted, and `plan` of both sides shows the same load balancers.
    Converted,
    /// Refused: convert's reasons, one line per reason.
    Refused(Vec<String>),
    /// No Ingress of the `alb` class: nothing to convert.
    Nothing,
}

/// Converts one manifest file and, if it converts, compares `plan` of both sides.
fn convert_and_compare(name: &str, fixture: &Path) -> Outcome {
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["convert", "--default-target-type", "ip", "-f"])
        .arg(fixture)
        .arg("-o")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    match out.status.code() {
        Some(0) => assert!(stderr.is_empty(), "{name}: converted, yet: {stderr}"),
        Some(1) => {
            let reasons: Vec<String> = stderr.lines().filter(|l| l.contains(": not converted: ")).map(str::to_string).collect();
            assert!(!reasons.is_empty() && reasons.len() == stderr.lines().count(), "{name}: exit 1 with: {stderr}");
            return Outcome::Refused(reasons);
        }
        other => panic!("{name}: convert exited {other:?}: {stderr}"),
    }
    let gateways = std::fs::read_dir(out_dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("gateway-"))
        .count();
    if gateways == 0 {
        return Outcome::Nothing;
    }
    let before = plan(fixture);
    let after = plan(out_dir.path());
    let services = services(fixture);
    let (a, b) = (shapes(&before, &services), shapes(&after, &services));
    assert!(
        a == b,
        "{name}: the Gateway's load balancer differs from the Ingresses'\nIngress: {}\nGateway: {}",
        serde_json::to_string_pretty(&a).unwrap(),
        serde_json::to_string_pretty(&b).unwrap()
    );
    // A conversion of a clean input is clean: every route accepted, no warning.
    if before["problems"] == json!([]) {
        assert_eq!(after["problems"], json!([]), "{name}: the Gateway objects have problems");
    }
    Outcome::Converted
}

#[test]
fn converted_fixtures_plan_the_same_load_balancers() {
    let fixtures = ingress_fixtures();
    assert!(fixtures.len() >= 40, "{} Ingress fixtures", fixtures.len());
    let mut converted = Vec::new();
    let mut refused = Vec::new();
    let mut ignored = Vec::new();
    for fixture in &fixtures {
        let name = fixture.file_stem().unwrap().to_string_lossy().to_string();
        match convert_and_compare(&name, fixture) {
            Outcome::Converted => converted.push(name),
            Outcome::Refused(reasons) => refused.push((name, reasons.join("\n    "))),
            Outcome::Nothing => ignored.push(name),
        }
    }
    println!("converted {} of {} Ingress fixtures: {}", converted.len(), fixtures.len(), converted.join(", "));
    println!("no Ingress of the alb class ({}): {}", ignored.len(), ignored.join(", "));
    println!("not converted ({}):", refused.len());
    for (name, reasons) in &refused {
        println!("  {name}:\n    {reasons}");
    }
    assert!(converted.len() >= MIN_CONVERTED, "only {} fixtures convert", converted.len());
    assert_eq!(converted.len() + refused.len() + ignored.len(), fixtures.len());
}

/// Redirects, weighted forwards, header, method and query conditions, and a group of two
/// Ingresses (in two namespaces) with a default backend: no fixture that converts has them.
#[test]
fn actions_and_groups_convert_to_the_same_load_balancer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.yaml");
    std::fs::write(
        &file,
        r##"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: front
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/group.name: storefront
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/actions.moved: >
      {"type":"redirect","redirectConfig":{"protocol":"HTTPS","port":"443","host":"new.example.com","statusCode":"HTTP_301"}}
    alb.ingress.kubernetes.io/actions.secure: >
      {"type":"redirect","redirectConfig":{"host":"#{host}","path":"/#{path}","query":"#{query}","protocol":"HTTPS","port":"443","statusCode":"HTTP_301"}}
    alb.ingress.kubernetes.io/conditions.split: >
      [{"field":"http-header","httpHeaderConfig":{"httpHeaderName":"X-Env","values":["beta"]}},
       {"field":"http-request-method","httpRequestMethodConfig":{"Values":["GET"]}},
       {"field":"query-string","queryStringConfig":{"values":[{"key":"v","value":"2"}]}}]
    alb.ingress.kubernetes.io/actions.split: >
      {"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"web","servicePort":"80","weight":80},{"serviceName":"canary","servicePort":"http","weight":20}]}}
spec:
  ingressClassName: alb
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /cart, pathType: Exact, backend: {service: {name: split, port: {name: use-annotation}}}}
      - {path: /account, pathType: Prefix, backend: {service: {name: secure, port: {name: use-annotation}}}}
  - host: old.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: moved, port: {name: use-annotation}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: api
  namespace: backend
  annotations:
    alb.ingress.kubernetes.io/group.name: storefront
    alb.ingress.kubernetes.io/group.order: "10"
    alb.ingress.kubernetes.io/target-type: ip
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: api, port: {number: 8080}}}
  rules:
  - http:
      paths:
      - {path: /v1, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: canary, namespace: shop}
spec: {ports: [{name: http, port: 81, targetPort: 8081}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: backend}
spec: {ports: [{port: 8080, targetPort: 9000}]}
"##,
    )
    .unwrap();
    match convert_and_compare("shop", &file) {
        Outcome::Converted => {}
        Outcome::Refused(reasons) => panic!("refused: {reasons:#?}"),
        Outcome::Nothing => panic!("nothing converted"),
    }

    // On stdout too: the GatewayClass, one Gateway taking routes from all namespaces, a
    // route per Ingress host and one for the default backend, the Services as they were.
    let out = Command::new(BIN).args(["convert", "--default-target-type", "ip", "-f"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(std::str::from_utf8(&out.stdout).unwrap())
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = docs.iter().map(|d| (d["kind"].as_str().unwrap(), d["metadata"]["name"].as_str().unwrap())).collect();
    assert_eq!(
        kinds,
        [
            ("GatewayClass", "aws-alb"),
            ("Gateway", "storefront"),
            ("HTTPRoute", "front-00"),
            ("HTTPRoute", "front-01"),
            ("HTTPRoute", "api"),
            ("HTTPRoute", "api-default-backend"),
            ("Service", "web"),
            ("Service", "canary"),
            ("Service", "api"),
        ]
    );
    assert_eq!(docs[0]["spec"]["controllerName"], "gateway.k8s.aws/alb");
    assert_eq!(docs[1]["metadata"]["namespace"], "shop", "the Gateway is in its first Ingress's namespace");
    assert_eq!(docs[1]["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["from"], "All");
    assert_eq!(docs[3]["spec"]["rules"][0]["filters"][0]["requestRedirect"]["statusCode"], 301);
    assert_eq!(docs[2]["spec"]["rules"][0]["backendRefs"][1], json!({"name": "canary", "port": 81, "weight": 20}));
    assert_eq!(
        docs[2]["spec"]["rules"][0]["matches"][0],
        json!({"path": {"type": "Exact", "value": "/cart"}, "headers": [{"type": "Exact", "name": "X-Env", "value": "beta"}],
               "queryParams": [{"name": "v", "value": "2"}], "method": "GET"})
    );
}

#[test]
fn what_cannot_be_converted_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refused.yaml");
    std::fs::write(
        &file,
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: public
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
    alb.ingress.kubernetes.io/actions.teapot: '{"type":"fixed-response","fixedResponseConfig":{"statusCode":"418"}}'
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /tea, pathType: Exact, backend: {service: {name: teapot, port: {name: use-annotation}}}}
      - {path: /img/*, pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fine}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80, targetPort: 8080}]}
"#,
    )
    .unwrap();
    let out = Command::new(BIN).args(["convert", "-f"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines.iter().all(|l| l.starts_with("Ingress default/public: not converted: ")), "{stderr}");
    assert!(stderr.contains("scheme needs LoadBalancerConfiguration"), "{stderr}");
    assert!(stderr.contains("fixed response"), "{stderr}");
    assert!(stderr.contains("\"/img/*\" is an ALB wildcard pattern"), "{stderr}");
    // The other Ingress is its own group and is still converted.
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("kind: HTTPRoute\nmetadata:\n  annotations:\n    alb-controller/converted-from: Ingress default/fine"),
        "{stdout}"
    );
    assert!(!stdout.contains("default/public"), "{stdout}");
}
