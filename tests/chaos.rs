//! `make chaos` (not in `make test`: it is long): N Ingresses (env `CHAOS_INGRESSES`, default
//! 30; every third one in one of three IngressGroups), each in front of a Deployment of two
//! pods, go through four stages — create, edit (a new path), endpoints (every Deployment
//! rolled to new pods), delete — twice in one invocation: once without
//! faults, then with `CHAOS_FAULT_RATE` (0.2) mixed faults on every AWS call (throttling,
//! 500, 503, resets, delays, served-but-reply-lost; tests/support/faults.rs) and the
//! controller SIGKILLed and restarted at random moments (0.3–3 s into each stage, then every 2–`CHAOS_KILL_MAX_SECS`
//! seconds, default 10). For each stage it prints whether it converged and in how long, next
//! to the fault-free time, and at the end the duplicates, orphans, stuck Ingresses and
//! panics seen. It fails unless every stage converged and all four counts are zero.
//!
//! Knobs (env): CHAOS_INGRESSES (30), CHAOS_FAULT_RATE (0.2), CHAOS_KILL_MAX_SECS (10),
//! CHAOS_STAGE_TIMEOUT_SECS (600), CHAOS_SEED (random).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use rand::Rng;
use serde_json::json;
use support::{Bed, TAG_CLUSTER, TAG_STACK, env_or, pod_ip, pod_ready};

const STAGES: [&str; 4] = ["create", "edit", "endpoints", "delete"];

fn ingress(i: usize) -> String {
    format!("ing-{i:03}")
}

fn service(i: usize) -> String {
    format!("svc-{i:03}")
}

/// The group of Ingress `i`, if any: every third Ingress joins one of three groups.
fn group(i: usize) -> Option<String> {
    i.is_multiple_of(3).then(|| format!("chaos-g{}", (i / 3) % 3))
}

fn path(i: usize, edited: bool) -> String {
    if edited { format!("/app-{i}-v2") } else { format!("/app-{i}") }
}

const REPLICAS: usize = 2;

/// Ready pod IPs by Service, of pods of generation `g` only (the `gen` label of the
/// Deployment's template: 0 at creation, 1 after the endpoints stage), and only for Services
/// whose `REPLICAS` pods are all Ready in that generation (a rollout still under way counts
/// as not there yet).
async fn pod_ips(bed: &Bed, g: usize) -> BTreeMap<String, BTreeSet<String>> {
    let pods = bed.api::<Pod>().list(&ListParams::default()).await.unwrap();
    let mut by_app: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
    for pod in &pods.items {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let Some(app) = labels.get("app") else { continue };
        let entry = by_app.entry(app.clone()).or_default();
        entry.0 += 1;
        if labels.get("gen") == Some(&g.to_string()) && pod.metadata.deletion_timestamp.is_none() && pod_ready(pod) {
            entry.1.extend(pod_ip(pod));
        }
    }
    by_app.into_iter().filter(|(_, (all, ready))| *all == REPLICAS && ready.len() == REPLICAS).map(|(app, (_, ips))| (app, ips)).collect()
}

fn deployment_object(i: usize) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": service(i)},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": service(i)}},
            "template": {
                "metadata": {"labels": {"app": service(i), "gen": "0"}},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [{"name": "app", "image": "app", "ports": [{"containerPort": 8080}]}]}
            }
        }
    }))
    .unwrap()
}

fn ingress_object(i: usize, edited: bool) -> Ingress {
    let mut annotations = BTreeMap::new();
    if let Some(g) = group(i) {
        annotations.insert("alb.ingress.kubernetes.io/group.name".to_string(), g);
    }
    serde_json::from_value(json!({
        "metadata": {"name": ingress(i), "annotations": annotations},
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"http": {"paths": [{
                "path": path(i, edited), "pathType": "Prefix",
                "backend": {"service": {"name": service(i), "port": {"number": 80}}}
            }]}}]
        }
    }))
    .unwrap()
}

/// What one Ingress should look like in AWS at some stage.
#[derive(Clone, Copy)]
struct Want {
    edited: bool,
    generation: usize,
}

/// Per load balancer (by DNS name): path value → registered target IPs of the rule's
/// target group. Read through the AWS API directly, never through the fault proxy.
async fn observed(bed: &Bed) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    for lb in bed.load_balancers().await {
        let (Some(dns), Some(arn)) = (lb.dns_name(), lb.load_balancer_arn()) else { continue };
        let mut paths = BTreeMap::new();
        for listener in bed.listeners(arn).await {
            for rule in bed.rules(listener.listener_arn().unwrap_or_default()).await {
                let tg = rule.actions().iter().find_map(|a| a.target_group_arn().map(str::to_string));
                let Some(tg) = tg else { continue };
                let targets: BTreeSet<String> = bed.targets(&tg).await.into_iter().map(|(ip, _)| ip).collect();
                for c in rule.conditions() {
                    let values = c.path_pattern_config().map(|p| p.values().to_vec()).unwrap_or_default();
                    for v in values.into_iter().chain(c.values().iter().cloned()) {
                        paths.insert(v, targets.clone());
                    }
                }
            }
        }
        out.insert(dns.to_string(), paths);
    }
    out
}

/// How many of the `n` Ingresses look as `want` says (hostname, rule path, targets).
async fn converged(bed: &Bed, n: usize, want: Want) -> usize {
    let seen = observed(bed).await;
    let pods = pod_ips(bed, want.generation).await;
    let ingresses: BTreeMap<String, Ingress> = bed
        .api::<Ingress>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| (i.metadata.name.clone().unwrap(), i))
        .collect();
    (0..n)
        .filter(|&i| {
            let host = ingresses
                .get(&ingress(i))
                .and_then(|ing| ing.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?.first()?.hostname.clone());
            let Some(paths) = host.and_then(|h| seen.get(&h)) else { return false };
            pods.get(&service(i)).is_some_and(|ips| paths.get(&path(i, want.edited)) == Some(ips))
        })
        .count()
}

/// Everything in the account tagged with the bed's cluster: (stack, kind) → IDs/ARNs.
async fn tagged(bed: &Bed) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut arns: Vec<String> = bed.load_balancers().await.iter().filter_map(|lb| lb.load_balancer_arn.clone()).collect();
    let tgs = bed.elbv2.describe_target_groups().send().await.unwrap().target_groups.unwrap_or_default();
    arns.extend(tgs.iter().filter_map(|tg| tg.target_group_arn.clone()));
    for arn in arns {
        let tags = bed.tags(&arn).await;
        if tags.get(TAG_CLUSTER) != Some(&bed.cluster) {
            continue;
        }
        let kind = if arn.contains(":loadbalancer/") {
            "load-balancer".to_string()
        } else {
            format!("target-group {}", tags.get("ingress.k8s.aws/resource").cloned().unwrap_or_default())
        };
        out.entry((tags.get(TAG_STACK).cloned().unwrap_or_default(), kind)).or_default().push(arn);
    }
    let f = aws_sdk_ec2::types::Filter::builder().name(format!("tag:{TAG_CLUSTER}")).values(&bed.cluster).build();
    let sgs = bed.ec2.describe_security_groups().filters(f).send().await.unwrap();
    for sg in sgs.security_groups() {
        let tag = |k: &str| sg.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).unwrap_or_default().to_string();
        let kind = format!("security-group {}", tag("ingress.k8s.aws/resource").max(tag("elbv2.k8s.aws/resource")));
        out.entry((tag(TAG_STACK), kind)).or_default().push(sg.group_id().unwrap_or_default().to_string());
    }
    out
}

/// Resources of one kind that a stack has more than once.
async fn duplicates(bed: &Bed) -> Vec<String> {
    tagged(bed).await.into_iter().filter(|(_, ids)| ids.len() > 1).map(|((stack, kind), ids)| format!("{stack} {kind}: {ids:?}")).collect()
}

struct StageResult {
    converged: bool,
    seconds: f64,
    detail: String,
}

struct RunResult {
    stages: Vec<StageResult>,
    duplicates: Vec<String>,
    orphans: Vec<String>,
    stuck: Vec<String>,
    panics: Vec<String>,
    kills: u32,
    injected: BTreeMap<&'static str, u64>,
    calls: u64,
}

/// Kills and restarts the controller at random moments while a stage runs.
struct Killer {
    enabled: bool,
    max_secs: u64,
    next: Instant,
    kills: u32,
    logs: Vec<PathBuf>,
}

impl Killer {
    /// The first kill of a stage comes 0.3-3 s into it, while the controller is at work;
    /// later ones 2 s to `max_secs` after the restart.
    fn schedule(&mut self, first: bool) {
        let millis =
            if first { rand::rng().random_range(300..3_000) } else { rand::rng().random_range(2_000..=self.max_secs.max(3) * 1000) };
        self.next = Instant::now() + Duration::from_millis(millis);
    }

    async fn maybe_kill(&mut self, bed: &mut Bed) {
        if !self.enabled || Instant::now() < self.next {
            return;
        }
        self.kills += 1;
        bed.restart_controller(&format!("{}-restart-{}", bed.ns, self.kills)).await;
        self.logs.push(bed.log.clone());
        self.schedule(false);
    }
}

/// What a stage waits for.
#[derive(Clone, Copy)]
enum Goal {
    /// Every Ingress looks as `Want` says.
    Look(Want),
    /// Every Ingress gone (finalizers released) and nothing tagged with the cluster left.
    Gone,
}

async fn reached(bed: &Bed, n: usize, goal: Goal) -> (bool, String) {
    match goal {
        Goal::Look(want) => {
            let c = converged(bed, n, want).await;
            (c == n, format!("{c}/{n}"))
        }
        Goal::Gone => {
            let left = bed.api::<Ingress>().list(&ListParams::default()).await.unwrap().items.len();
            let tagged = tagged(bed).await.len();
            (left == 0 && tagged == 0, format!("{left} Ingresses, {tagged} tagged resources left"))
        }
    }
}

/// Polls until the goal is reached (or the deadline), killing as told.
async fn wait_stage(bed: &mut Bed, killer: &mut Killer, n: usize, goal: Goal, timeout: Duration, started: Instant) -> StageResult {
    killer.schedule(true);
    loop {
        let (ok, detail) = reached(bed, n, goal).await;
        if ok || started.elapsed() > timeout {
            return StageResult { converged: ok, seconds: started.elapsed().as_secs_f64(), detail };
        }
        killer.maybe_kill(bed).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(n: usize, fault_rate: f64, kill_max_secs: u64, seed: u64) -> RunResult {
    let with_faults = fault_rate > 0.0;
    let name = if with_faults { "chaos-faulty" } else { "chaos-clean" };
    // A short drift interval: under faults a missed write is also found by the drift check.
    let mut bed = Bed::start_with_faults(name, &[]).await;
    bed.wait_metrics_up().await.unwrap();
    let timeout = Duration::from_secs(env_or("CHAOS_STAGE_TIMEOUT_SECS", 600));
    let mut killer = Killer {
        enabled: with_faults && kill_max_secs > 0,
        max_secs: kill_max_secs,
        next: Instant::now(),
        kills: 0,
        logs: vec![bed.log.clone()],
    };
    // Room for every pod and one surge pod per Deployment (62 pods per node).
    bed.grow_nodes((n * (REPLICAS + 1)).div_ceil(62).max(support::NODES)).await;
    let pp = PostParams::default();
    for i in 0..n {
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": service(i)},
            "spec": {"selector": {"app": service(i)}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
        .unwrap();
        bed.api::<Service>().create(&pp, &svc).await.unwrap();
        bed.api::<Deployment>().create(&pp, &deployment_object(i)).await.unwrap();
    }
    if with_faults {
        bed.faults().mixed(fault_rate, seed);
    }
    let mut stages = Vec::new();
    let mut dups = BTreeSet::new();

    // create
    let started = Instant::now();
    for i in 0..n {
        bed.api::<Ingress>().create(&pp, &ingress_object(i, false)).await.unwrap();
    }
    let goal = Goal::Look(Want { edited: false, generation: 0 });
    stages.push(wait_stage(&mut bed, &mut killer, n, goal, timeout, started).await);
    dups.extend(duplicates(&bed).await);

    // edit: every Ingress gets a new path
    let started = Instant::now();
    for i in 0..n {
        let patch = json!({"spec": {"rules": [{"http": {"paths": [{"path": path(i, true), "pathType": "Prefix", "backend": {"service": {"name": service(i), "port": {"number": 80}}}}]}}]}});
        bed.api::<Ingress>().patch(&ingress(i), &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }
    let goal = Goal::Look(Want { edited: true, generation: 0 });
    stages.push(wait_stage(&mut bed, &mut killer, n, goal, timeout, started).await);
    dups.extend(duplicates(&bed).await);

    // endpoints: every Deployment rolled to new pods (a new template, as a rollout restart)
    let started = Instant::now();
    for i in 0..n {
        let patch = json!({"spec": {"template": {"metadata": {"labels": {"gen": "1"}}}}});
        bed.api::<Deployment>().patch(&service(i), &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }
    let goal = Goal::Look(Want { edited: true, generation: 1 });
    stages.push(wait_stage(&mut bed, &mut killer, n, goal, timeout, started).await);
    dups.extend(duplicates(&bed).await);

    // delete: every Ingress gone (finalizers released) and nothing tagged with the cluster left
    let started = Instant::now();
    for i in 0..n {
        bed.api::<Ingress>().delete(&ingress(i), &DeleteParams::default()).await.unwrap();
    }
    stages.push(wait_stage(&mut bed, &mut killer, n, Goal::Gone, timeout, started).await);
    let orphans = tagged(&bed).await.into_iter().map(|((stack, kind), ids)| format!("{stack} {kind}: {ids:?}")).collect();
    let stuck =
        bed.api::<Ingress>().list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|i| i.metadata.name).collect();
    let panics = killer
        .logs
        .iter()
        .filter_map(|log| {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            text.lines().find(|l| l.contains("panicked")).map(|l| format!("{}: {l}", log.display()))
        })
        .collect();
    let (injected, calls) = if with_faults {
        (bed.faults().injected_by_kind(), bed.faults().calls_total())
    } else {
        (BTreeMap::new(), bed.faults().calls_total())
    };
    RunResult { stages, duplicates: dups.into_iter().collect(), orphans, stuck, panics, kills: killer.kills, injected, calls }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long (minutes): run by `make chaos`"]
async fn chaos() {
    let n: usize = env_or("CHAOS_INGRESSES", 30);
    let rate: f64 = env_or("CHAOS_FAULT_RATE", 0.2);
    let kill_max: u64 = env_or("CHAOS_KILL_MAX_SECS", 10);
    let seed: u64 = env_or("CHAOS_SEED", rand::random());
    eprintln!("chaos: {n} Ingresses; fault rate {rate}; SIGKILL 0.3-3 s into each stage, then every 2-{kill_max} s; seed {seed}");
    let clean = run(n, 0.0, 0, seed).await;
    let faulty = run(n, rate, kill_max, seed).await;

    println!(
        "\nchaos: {n} Ingresses, {:.0} % mixed faults on every AWS call, {} SIGKILLs of the controller (seed {seed})",
        rate * 100.0,
        faulty.kills
    );
    println!("{:<10} {:>9} {:>12} {:>9} {:>12} {:>8}", "stage", "clean", "clean (s)", "faults", "faults (s)", "ratio");
    let mut ok = true;
    for (i, stage) in STAGES.iter().enumerate() {
        let (c, f) = (&clean.stages[i], &faulty.stages[i]);
        ok &= c.converged && f.converged;
        let yn = |s: &StageResult| if s.converged { "Y".to_string() } else { format!("N ({})", s.detail) };
        println!(
            "{:<10} {:>9} {:>12.1} {:>9} {:>12.1} {:>7.1}x",
            stage,
            yn(c),
            c.seconds,
            yn(f),
            f.seconds,
            f.seconds / c.seconds.max(0.1)
        );
    }
    let total = |r: &RunResult| r.stages.iter().map(|s| s.seconds).sum::<f64>();
    println!(
        "{:<10} {:>9} {:>12.1} {:>9} {:>12.1} {:>7.1}x",
        "all",
        "",
        total(&clean),
        "",
        total(&faulty),
        total(&faulty) / total(&clean).max(0.1)
    );
    println!("AWS calls through the proxy: {} clean, {} with faults; injected: {:?}", clean.calls, faulty.calls, faulty.injected);
    for (label, r) in [("clean", &clean), ("faults", &faulty)] {
        println!(
            "{label:<7} duplicates {}  orphans {}  stuck {}  panics {}",
            r.duplicates.len(),
            r.orphans.len(),
            r.stuck.len(),
            r.panics.len()
        );
        for line in r.duplicates.iter().chain(&r.orphans).chain(&r.stuck).chain(&r.panics) {
            println!("    {line}");
        }
        ok &= r.duplicates.is_empty() && r.orphans.is_empty() && r.stuck.is_empty() && r.panics.is_empty();
    }
    assert!(ok, "chaos: a stage did not converge or something was duplicated, orphaned, stuck or panicked (table above)");
}
