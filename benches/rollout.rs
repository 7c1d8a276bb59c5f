//! `make bench-rollout`: real Deployments rolled out behind ALBs at once, on the bed's
//! control plane (kube-controller-manager, kube-scheduler, KWOK as the kubelet).
//!
//! Sets up `ROLLOUT_DEPLOYMENTS` (100) Deployments of `ROLLOUT_REPLICAS` (10) pods, each
//! behind a Service and an Ingress of its own (`ip` targets; `maxSurge: 1, maxUnavailable:
//! 0`; pods drain `ROLLOUT_DRAIN_MS` (3000) ms after they are told to stop, in a 10 s grace
//! period), with the readiness-gate webhook on (`ROLLOUT_GATES=0`: off), on enough worker
//! nodes for them (localstack/seed.py --nodes, hack/nodes.py). Once every target group holds
//! its Ready pods, every Deployment gets `kubectl rollout restart` at once. Reports
//! - containers ready → target registered, and target registered → pod Ready (the gate
//!   turning True); without gates, pod Ready → target registered (p50/p99);
//! - a pod beginning to terminate → its target deregistered (p50/p99);
//! - the least registered-and-Ready capacity each target group had during the rollout, as a
//!   fraction of its replicas (min and p50 over target groups);
//! - AWS calls per pod replaced, by operation; the controller's peak RSS.
//!
//! Pod times come from a watch of the namespace (when the bench saw the change); target
//! times from the controller's JSON log lines `registered targets` / `deregistered targets`
//! (written once the call has returned, so they include the call). Capacity is replayed from
//! both: a pod counts while it is Ready, not terminating, and its target is registered.
//! At the end every target group is read back (DescribeTargetHealth) and must hold exactly
//! its Deployment's new pods.
//!
//! Knobs (env): ROLLOUT_DEPLOYMENTS (100), ROLLOUT_REPLICAS (10), ROLLOUT_GATES (1),
//! ROLLOUT_DRAIN_MS (3000), ROLLOUT_SETUP_TIMEOUT_SECS (1200), ROLLOUT_TIMEOUT_SECS (900),
//! ALB_CONTROLLER_BIN (the controller binary). Runs only under `cargo bench`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use support::gates::GateWebhook;
use support::{Bed, env_or, memory_kib, pod_ip, pod_ready};

/// Pods a bed node takes (its /26 podCIDR: 62 addresses).
const PODS_PER_NODE: usize = 62;

fn main() {
    support::bench_main("rollout", "`make bench-rollout`", run);
}

fn log(start: Instant, msg: impl std::fmt::Display) {
    eprintln!("[rollout {:>7.1}s] {msg}", start.elapsed().as_secs_f64());
}

fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() as f64 - 1.0) * p).round() as usize).min(sorted.len() - 1)]
}

fn p50_p99(mut xs: Vec<f64>) -> String {
    xs.sort_by(f64::total_cmp);
    format!(
        "p50 {:.3} s   p99 {:.3} s   max {:.3} s   (n = {})",
        percentile(&xs, 0.5),
        percentile(&xs, 0.99),
        xs.last().copied().unwrap_or(f64::NAN),
        xs.len()
    )
}

fn app(i: usize) -> String {
    format!("web-{i}")
}

fn manifests(i: usize, replicas: usize, drain_ms: u64) -> (String, String) {
    let name = app(i);
    let front = format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  annotations: {{alb.ingress.kubernetes.io/target-type: ip}}
spec:
  ingressClassName: alb
  defaultBackend: {{service: {{name: {name}, port: {{number: 80}}}}}}
"#
    );
    let deployment = format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{pod-delete.stage.kwok.x-k8s.io/delay: "{drain_ms}"}}
    spec:
      terminationGracePeriodSeconds: 10
      containers: [{{name: web, image: web, ports: [{{containerPort: 8080}}]}}]
"#
    );
    (front, deployment)
}

/// Gives the bed `total` worker nodes: more EC2 instances of its account (seed.py keeps the
/// ones it has) and their Node objects in the bed's pool.
async fn grow_nodes(bed: &mut Bed, total: usize) -> Result<(), String> {
    use std::io::Write;
    let seed = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/localstack/seed.sh"))
        .args(["--cluster", &bed.cluster, "--nodes", &total.to_string()])
        .env("AWS_ACCESS_KEY_ID", &bed.account)
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .map_err(|e| format!("seed.sh: {e}"))?;
    if !seed.status.success() {
        return Err(format!("seed.sh: {}", String::from_utf8_lossy(&seed.stderr)));
    }
    let mut nodes = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/nodes.py"))
        .args(["--pool", &bed.ns])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nodes.py: {e}"))?;
    nodes.stdin.take().unwrap().write_all(&seed.stdout).map_err(|e| e.to_string())?;
    let out = nodes.wait_with_output().map_err(|e| e.to_string())?;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("nodes.py output: {e}"))?;
    let items: Vec<Node> = serde_json::from_value(list["items"].clone()).map_err(|e| e.to_string())?;
    let api = Api::<Node>::all(bed.client.clone());
    for node in items {
        let name = node.metadata.name.clone().unwrap_or_default();
        if bed.nodes.contains(&name) {
            continue;
        }
        api.create(&PostParams::default(), &node).await.map_err(|e| format!("create Node {name}: {e}"))?;
        bed.nodes.push(name);
    }
    Ok(())
}

/// What the watch saw of one pod (times: seconds since the epoch, when the bench saw it).
#[derive(Default, Clone, Debug)]
struct PodTimes {
    app: String,
    ip: Option<String>,
    containers_ready: Option<f64>,
    ready: Option<f64>,
    terminating: Option<f64>,
    gone: Option<f64>,
}

#[derive(Default)]
struct Watched {
    pods: HashMap<String, PodTimes>,
    /// (time, pod, serving): a pod starts or stops counting (Ready and not terminating).
    serving: Vec<(f64, String, bool)>,
}

fn condition(pod: &Pod, type_: &str) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| c.type_ == type_ && c.status == "True")
}

impl Watched {
    fn saw(&mut self, pod: &Pod, deleted: bool) {
        let t = now_unix();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let app = pod.metadata.labels.as_ref().and_then(|l| l.get("app")).cloned().unwrap_or_default();
        let p = self.pods.entry(name.clone()).or_insert_with(|| PodTimes { app, ..Default::default() });
        let was_serving = p.ready.is_some() && p.terminating.is_none() && p.gone.is_none();
        if p.ip.is_none() {
            p.ip = pod_ip(pod);
        }
        if p.containers_ready.is_none() && condition(pod, "ContainersReady") {
            p.containers_ready = Some(t);
        }
        if p.ready.is_none() && pod_ready(pod) {
            p.ready = Some(t);
        }
        if p.terminating.is_none() && pod.metadata.deletion_timestamp.is_some() {
            p.terminating = Some(t);
        }
        if deleted && p.gone.is_none() {
            p.gone = Some(t);
        }
        let serving = p.ready.is_some() && p.terminating.is_none() && p.gone.is_none();
        if serving != was_serving {
            self.serving.push((t, name, serving));
        }
    }
}

/// The controller's `registered targets` / `deregistered targets` log lines: (time, target
/// group name, IP, registered).
fn target_log(path: &std::path::Path) -> Vec<(f64, String, String, bool)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let registered = match v["fields"]["message"].as_str() {
            Some("registered targets") => true,
            Some("deregistered targets") => false,
            _ => continue,
        };
        let ts = v["timestamp"].as_str().and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok());
        let (Some(ts), Some(tg), Some(ips)) = (ts, v["fields"]["target_group"].as_str(), v["fields"]["ips"].as_str()) else {
            continue;
        };
        let t = ts.as_millisecond() as f64 / 1000.0;
        out.extend(ips.split(',').filter(|s| !s.is_empty()).map(|ip| (t, tg.to_string(), ip.to_string(), registered)));
    }
    out
}

/// Each Deployment's target group name and ARN (Ingress → load balancer → listener →
/// default action), once every Ingress has a hostname.
async fn target_groups(bed: &Bed, n: usize) -> Result<Vec<(String, String)>, String> {
    // Both paginated: with 100 of each, one page is not all.
    let lbs: Vec<_> = bed.elbv2.describe_load_balancers().into_paginator().items().send().try_collect().await.map_err(|e| e.to_string())?;
    let all: Vec<_> = bed.elbv2.describe_target_groups().into_paginator().items().send().try_collect().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for i in 0..n {
        let dns = bed.hostname(&app(i)).await.ok_or(format!("{} has no hostname", app(i)))?;
        let lb = lbs.iter().find(|lb| lb.dns_name() == Some(dns.as_str())).ok_or(format!("no load balancer {dns}"))?;
        let listener = bed.listeners(lb.load_balancer_arn().unwrap_or_default()).await.into_iter().next().ok_or("no listener")?;
        let arn = listener.default_actions().first().and_then(|a| a.target_group_arn()).ok_or("no forward")?.to_string();
        let name = all.iter().find(|tg| tg.target_group_arn() == Some(arn.as_str())).and_then(|tg| tg.target_group_name());
        out.push((name.ok_or(format!("no target group {arn}"))?.to_string(), arn));
    }
    Ok(out)
}

/// Target groups (by index) whose targets are exactly the Ready, not terminating pods of
/// their Deployment.
async fn groups_matching_pods(bed: &Bed, tgs: &[(String, String)]) -> usize {
    let Ok(pods) = bed.api::<Pod>().list(&ListParams::default()).await else { return 0 };
    let mut by_app: HashMap<String, BTreeSet<String>> = HashMap::new();
    for p in pods.items.iter().filter(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none()) {
        let app = p.metadata.labels.as_ref().and_then(|l| l.get("app")).cloned().unwrap_or_default();
        by_app.entry(app).or_default().extend(pod_ip(p));
    }
    let matched: Vec<bool> = stream::iter(tgs.iter().enumerate())
        .map(|(i, (_, arn))| {
            let want = by_app.get(&app(i)).cloned().unwrap_or_default();
            async move {
                let have: BTreeSet<String> = bed.targets(arn).await.into_iter().map(|(ip, _)| ip).collect();
                !want.is_empty() && have == want
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    matched.into_iter().filter(|m| *m).count()
}

async fn rollout_complete(bed: &Bed, n: usize, replicas: usize, old: &BTreeSet<String>) -> (usize, bool) {
    let Ok(deployments) = bed.api::<Deployment>().list(&ListParams::default()).await else { return (0, false) };
    let done = deployments
        .items
        .iter()
        .filter(|d| {
            let (Some(status), generation) = (d.status.as_ref(), d.metadata.generation.unwrap_or(0)) else { return false };
            status.observed_generation.unwrap_or(0) >= generation
                && [status.updated_replicas, status.ready_replicas, status.available_replicas, status.replicas]
                    .iter()
                    .all(|x| x.unwrap_or(0) as usize == replicas)
        })
        .count();
    let Ok(pods) = bed.api::<Pod>().list(&ListParams::default()).await else { return (done, false) };
    let old_left = pods.items.iter().any(|p| p.metadata.name.as_ref().is_some_and(|n| old.contains(n)));
    (done, done == n && !old_left)
}

async fn run() -> i32 {
    let n: usize = env_or("ROLLOUT_DEPLOYMENTS", 100);
    let replicas: usize = env_or("ROLLOUT_REPLICAS", 10);
    let gates: bool = env_or::<u8>("ROLLOUT_GATES", 1) != 0;
    let drain_ms: u64 = env_or("ROLLOUT_DRAIN_MS", 3000);
    let setup_timeout = Duration::from_secs(env_or("ROLLOUT_SETUP_TIMEOUT_SECS", 1200));
    let rollout_timeout = Duration::from_secs(env_or("ROLLOUT_TIMEOUT_SECS", 900));
    assert!(replicas <= PODS_PER_NODE, "ROLLOUT_REPLICAS <= {PODS_PER_NODE}");
    let t_bench = Instant::now();

    // ---- the bed: controller (with the webhook), nodes ----
    let webhook = GateWebhook::new();
    let mut args: Vec<String> = vec!["--log-json".into()];
    if gates {
        args.extend(webhook.args());
    }
    let mut bed = Bed::start_from_env_with_args("rollout", &args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let pid = bed.controller_pid();
    log(t_bench, format_args!("namespace {} account {} controller pid {pid} log {}", bed.ns, bed.account, bed.log.display()));
    if let Err(e) = bed.wait_metrics_up().await {
        eprintln!("[rollout] {e}");
        return 2;
    }
    // Every pod plus a surge pod per Deployment, with a quarter to spare (KWOK hands out
    // addresses of a node's block in turn, so a node must not run short of free ones).
    let nodes = (n * (replicas + 1) * 5 / 4).div_ceil(PODS_PER_NODE).max(support::NODES);
    let t_nodes = Instant::now();
    if let Err(e) = grow_nodes(&mut bed, nodes).await {
        eprintln!("[rollout] {e}");
        return 2;
    }
    log(t_bench, format_args!("{nodes} worker nodes in {:.1}s", t_nodes.elapsed().as_secs_f64()));

    // ---- setup: Services + Ingresses, then (webhook serving) the Deployments ----
    let t_setup = Instant::now();
    let stacks: Vec<(String, String)> = (0..n).map(|i| manifests(i, replicas, drain_ms)).collect();
    stream::iter(&stacks).for_each_concurrent(16, |(front, _)| bed.apply(front)).await;
    let mut last_progress = Instant::now();
    loop {
        let mut hosts = 0;
        for i in 0..n {
            hosts += usize::from(bed.hostname(&app(i)).await.is_some());
        }
        if hosts == n {
            break;
        }
        if t_setup.elapsed() > setup_timeout {
            eprintln!("[rollout] setup timed out: {hosts}/{n} hostnames");
            return 1;
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            log(t_bench, format_args!("{hosts}/{n} hostnames"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let tgs = match target_groups(&bed, n).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("[rollout] {e}");
            return 2;
        }
    };
    log(t_bench, format_args!("{n} ALBs in {:.1}s", t_setup.elapsed().as_secs_f64()));
    if gates {
        webhook.install(&bed).await;
        webhook.wait_serving(&bed, json!({"app": app(0)})).await;
    }
    stream::iter(&stacks).for_each_concurrent(16, |(_, deployment)| bed.apply(deployment)).await;
    loop {
        let matched = groups_matching_pods(&bed, &tgs).await;
        if matched == n {
            break;
        }
        if t_setup.elapsed() > setup_timeout {
            eprintln!("[rollout] setup timed out: {matched}/{n} target groups hold their {replicas} Ready pods");
            return 1;
        }
        log(t_bench, format_args!("{matched}/{n} target groups hold their {replicas} Ready pods"));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let setup_time = t_setup.elapsed();
    if bed.wait_quiet_for(Duration::from_secs(3), Duration::from_secs(180)).await.is_none() {
        eprintln!("[rollout] the controller never went quiet after setup (log: {})", bed.log.display());
        return 1;
    }
    log(t_bench, format_args!("setup: {n} Deployments × {replicas} behind their ALBs in {:.1}s", setup_time.as_secs_f64()));

    // ---- the rollout ----
    let watched = Arc::new(Mutex::new(Watched::default()));
    let watch = {
        let (watched, api) = (watched.clone(), bed.api::<Pod>());
        tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
            while let Ok(Some(event)) = events.try_next().await {
                let mut w = watched.lock().unwrap();
                match event {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => w.saw(&p, false),
                    watcher::Event::Delete(p) => w.saw(&p, true),
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
        })
    };
    // The watch's initial list: the pods before the rollout.
    let old: BTreeSet<String> = support::eventually("the pod watch has listed every pod", Duration::from_secs(60), || async {
        let w = watched.lock().unwrap();
        (w.pods.len() == n * replicas).then(|| w.pods.keys().cloned().collect())
    })
    .await;
    let calls_before = bed.aws_calls().await;
    let t0 = now_unix();
    let t_rollout = Instant::now();
    let restarted = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": restarted}}}}});
    let deployments = bed.api::<Deployment>();
    stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let (api, patch) = (deployments.clone(), patch.clone());
            async move {
                if let Err(e) = api.patch(&app(i), &PatchParams::default(), &Patch::Merge(patch)).await {
                    eprintln!("[rollout] restart {}: {e}", app(i));
                }
            }
        })
        .await;
    log(t_bench, format_args!("{n} Deployments restarted in {:.1}s", t_rollout.elapsed().as_secs_f64()));
    let mut last_progress = Instant::now();
    let completed = loop {
        let (done, complete) = rollout_complete(&bed, n, replicas, &old).await;
        if complete {
            break true;
        }
        if t_rollout.elapsed() > rollout_timeout {
            eprintln!("[rollout] the rollout did not complete in {rollout_timeout:?}: {done}/{n} Deployments");
            break false;
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            log(t_bench, format_args!("{done}/{n} Deployments rolled out"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let rollout_wall = t_rollout.elapsed().as_secs_f64();
    let quiet = bed.wait_quiet_for(Duration::from_secs(3), Duration::from_secs(300)).await;
    let t_end = now_unix();
    let calls_after = bed.aws_calls().await;
    let final_matched = groups_matching_pods(&bed, &tgs).await;
    let (hwm, rss) = memory_kib(pid);
    watch.abort();
    let watched = std::mem::take(&mut *watched.lock().unwrap());

    // ---- analysis ----
    let log_lines = target_log(&bed.log);
    let tg_index: HashMap<&str, usize> = tgs.iter().enumerate().map(|(i, (name, _))| (name.as_str(), i)).collect();
    // First registration / deregistration of each (target group, IP) in the rollout window
    // (new pods' addresses are new; an address is looked up within its own target group).
    let mut registered_at: HashMap<(usize, String), f64> = HashMap::new();
    let mut deregistered_at: HashMap<(usize, String), f64> = HashMap::new();
    for (t, tg, ip, registered) in &log_lines {
        let (Some(&i), true) = (tg_index.get(tg.as_str()), *t >= t0) else { continue };
        let map = if *registered { &mut registered_at } else { &mut deregistered_at };
        map.entry((i, ip.clone())).or_insert(*t);
    }
    let app_index: HashMap<String, usize> = (0..n).map(|i| (app(i), i)).collect();
    let (mut ready_to_registered, mut containers_to_registered, mut registered_to_ready) = (Vec::new(), Vec::new(), Vec::new());
    let (mut terminating_to_deregistered, mut never_registered, mut never_deregistered) = (Vec::new(), 0, 0);
    for (name, p) in &watched.pods {
        let (Some(&i), Some(ip)) = (app_index.get(&p.app), p.ip.clone()) else { continue };
        if old.contains(name) {
            match (p.terminating, deregistered_at.get(&(i, ip))) {
                (Some(t), Some(d)) => terminating_to_deregistered.push(d - t),
                _ => never_deregistered += 1,
            }
            continue;
        }
        let Some(reg) = registered_at.get(&(i, ip)) else {
            never_registered += 1;
            continue;
        };
        if let Some(c) = p.containers_ready {
            containers_to_registered.push(reg - c);
        }
        if let Some(r) = p.ready {
            ready_to_registered.push(reg - r);
            registered_to_ready.push(r - reg);
        }
    }
    // Capacity per target group, replayed in time order from the watch and the log.
    let ip_of: HashMap<&str, &str> = watched.pods.iter().filter_map(|(n, p)| Some((n.as_str(), p.ip.as_deref()?))).collect();
    let app_of: HashMap<&str, usize> = watched.pods.iter().filter_map(|(n, p)| Some((n.as_str(), *app_index.get(&p.app)?))).collect();
    enum Change<'a> {
        Serving(&'a str, bool),
        Target(usize, &'a str, bool),
    }
    let mut changes: Vec<(f64, Change)> = watched.serving.iter().map(|(t, pod, s)| (*t, Change::Serving(pod.as_str(), *s))).collect();
    changes.extend(log_lines.iter().filter_map(|(t, tg, ip, r)| Some((*t, Change::Target(*tg_index.get(tg.as_str())?, ip.as_str(), *r)))));
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut serving: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); n]; // IPs of serving pods
    let mut targets: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); n];
    let mut min_capacity = vec![usize::MAX; n];
    for (t, change) in &changes {
        let i = match change {
            Change::Serving(pod, on) => {
                let (Some(&i), Some(&ip)) = (app_of.get(pod), ip_of.get(pod)) else { continue };
                if *on {
                    serving[i].insert(ip)
                } else {
                    serving[i].remove(ip)
                };
                i
            }
            Change::Target(i, ip, on) => {
                if *on {
                    targets[*i].insert(ip)
                } else {
                    targets[*i].remove(ip)
                };
                *i
            }
        };
        if *t >= t0 && *t <= t_end {
            min_capacity[i] = min_capacity[i].min(serving[i].intersection(&targets[i]).count());
        }
    }
    let mut fractions: Vec<f64> = min_capacity.iter().map(|&c| if c == usize::MAX { 1.0 } else { c as f64 / replicas as f64 }).collect();
    fractions.sort_by(f64::total_cmp);
    let below = min_capacity.iter().filter(|&&c| c < replicas).count();

    let replaced = (n * replicas) as f64;
    let op = |m: &BTreeMap<String, u64>, name: &str| m.get(name).copied().unwrap_or(0);
    let all_calls: u64 = calls_after.values().sum::<u64>() - calls_before.values().sum::<u64>();
    let by_op: BTreeMap<&String, u64> = calls_after.iter().map(|(k, v)| (k, v - op(&calls_before, k))).filter(|(_, d)| *d > 0).collect();

    // ---- report ----
    println!();
    println!(
        "== alb-controller rollout bench: {n} Deployments × {replicas} replicas, rolled at once, readiness gates {} ==",
        if gates { "on" } else { "off" }
    );
    println!("controller     {}", std::env::var("ALB_CONTROLLER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_alb-controller").into()));
    println!("log            {}", bed.log.display());
    println!("nodes          {nodes}   pods drain {drain_ms} ms in a 10 s grace period; maxSurge 1, maxUnavailable 0");
    println!();
    println!("Setup          {n} ALBs + {} pods registered in {:.1} s", n * replicas, setup_time.as_secs_f64());
    println!(
        "Rollout        {} in {rollout_wall:.1} s; controller quiet {}",
        if completed { "complete" } else { "NOT complete" },
        if quiet.is_some() { "after it" } else { "NOT within 300 s" }
    );
    println!();
    println!("New pods ({} replaced; {never_registered} never registered)", n * replicas);
    if gates {
        println!("  containers ready -> target registered   {}", p50_p99(containers_to_registered.clone()));
        println!("  target registered -> pod Ready (gate)   {}", p50_p99(registered_to_ready.clone()));
    } else {
        println!("  pod Ready -> target registered         {}", p50_p99(ready_to_registered.clone()));
    }
    println!("Old pods ({never_deregistered} never deregistered)");
    println!("  terminating -> target deregistered     {}", p50_p99(terminating_to_deregistered.clone()));
    println!();
    println!("Registered-and-Ready capacity during the rollout, per target group (fraction of {replicas})");
    println!(
        "  min {:.2}   p50 {:.2}   target groups ever below {replicas}: {below}/{n}",
        fractions.first().copied().unwrap_or(f64::NAN),
        percentile(&fractions, 0.5)
    );
    println!();
    println!("AWS calls during the rollout: {all_calls} ({:.3} per pod replaced)", all_calls as f64 / replaced);
    for (k, v) in &by_op {
        println!("  {k:<28} {v:>7}  ({:.3} per pod)", *v as f64 / replaced);
    }
    println!();
    println!("Final state    target groups holding exactly their Deployment's Ready pods: {final_matched}/{n}");
    println!("Controller     peak RSS (VmHWM) {:.1} MiB, RSS at the end {:.1} MiB", hwm as f64 / 1024.0, rss as f64 / 1024.0);
    println!();
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let r3 = |x: f64| if x.is_finite() { (x * 1000.0).round() / 1000.0 } else { -1.0 };
    let (c2r, r2r, ready2r, t2d) =
        (sorted(containers_to_registered), sorted(registered_to_ready), sorted(ready_to_registered), sorted(terminating_to_deregistered));
    println!(
        "{}",
        json!({
            "bench": "rollout",
            "deployments": n,
            "replicas": replicas,
            "readiness_gates": gates,
            "nodes": nodes,
            "setup_seconds": r3(setup_time.as_secs_f64()),
            "rollout_seconds": r3(rollout_wall),
            "completed": completed,
            "containers_ready_to_registered_p50_seconds": r3(percentile(&c2r, 0.5)),
            "containers_ready_to_registered_p99_seconds": r3(percentile(&c2r, 0.99)),
            "registered_to_ready_p50_seconds": r3(percentile(&r2r, 0.5)),
            "registered_to_ready_p99_seconds": r3(percentile(&r2r, 0.99)),
            "ready_to_registered_p50_seconds": r3(percentile(&ready2r, 0.5)),
            "ready_to_registered_p99_seconds": r3(percentile(&ready2r, 0.99)),
            "terminating_to_deregistered_p50_seconds": r3(percentile(&t2d, 0.5)),
            "terminating_to_deregistered_p99_seconds": r3(percentile(&t2d, 0.99)),
            "never_registered": never_registered,
            "never_deregistered": never_deregistered,
            "min_capacity_fraction_min": r3(fractions.first().copied().unwrap_or(f64::NAN)),
            "min_capacity_fraction_p50": r3(percentile(&fractions, 0.5)),
            "target_groups_below_replicas": below,
            "aws_calls": all_calls,
            "aws_calls_per_pod_replaced": r3(all_calls as f64 / replaced),
            "final_state_matched": final_matched,
            "peak_rss_mib": r3(hwm as f64 / 1024.0),
        })
    );
    if gates {
        webhook.uninstall(&bed).await;
    }
    drop(bed);
    i32::from(!completed || quiet.is_none() || final_matched != n || never_registered > 0 || never_deregistered > 0)
}
