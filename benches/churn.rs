//! `make bench-churn` (and the second part of `make bench`): endpoint churn on the real bed. Sets up `CHURN_INGRESSES` Ingresses
//! (default 50, one Service and one EndpointSlice of `CHURN_ENDPOINTS` ready endpoints each,
//! default 40: 2 000 endpoints in all), waits until every hostname is set and every target is
//! registered, then for `CHURN_SECONDS` (60) makes `CHURN_RATE` changes/s (100): each change
//! replaces one endpoint of a random slice with a new, unique IP. Reports
//! - the latency from the EndpointSlice write (wall clock, just before the PATCH is sent) to the
//!   controller's `registered targets` log line naming that IP (p50, p90, p99, max), and the
//!   same for the replaced IP's `deregistered targets` line;
//! - the AWS Register/DeregisterTargets calls per change (metrics delta over the churn);
//! - the controller's peak RSS (VmHWM);
//! - bursts: then `CHURN_BURST_SLICES` (10) slices get a rolling update at once, every
//!   endpoint replaced one PATCH at a time as fast as the API server takes them (a
//!   Deployment rollout); reports the AWS calls per change (the debounce coalesces a burst)
//!   and the time from each rollout's last write to its last new IP registered;
//! - whether every target group ends up with exactly its slice's endpoints.
//!
//! With `CHURN_INGRESSES=1000 CHURN_ENDPOINTS=10` (`make bench-scale`) the same run shows the
//! controller's memory with 1 000 Ingresses and 10 000 endpoints present.
//!
//! The controller runs with `--log-json` (the bed sets `RUST_LOG=info,alb_controller=debug`),
//! so the debug lines of src/sync/targets.rs carry an RFC 3339 `timestamp` and `fields.ips`.
//! They are logged once the call has returned, so the latency includes the AWS call itself.
//!
//! Runs only under `cargo bench` (which passes `--bench`); `cargo test --all-targets` builds
//! it and returns at once. Needs the bed (`hack/bench.sh churn` starts one).
//!
//! Knobs (env): CHURN_INGRESSES (50), CHURN_ENDPOINTS (40 per slice), CHURN_RATE (100 changes/s),
//! CHURN_SECONDS (60), CHURN_IN_FLIGHT (4 writes), CHURN_BURST_SLICES (10), CHURN_SETUP_TIMEOUT_SECS (600),
//! ALB_CONTROLLER_BIN (the controller binary).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{Bed, cpu_seconds, env_or, memory_kib, samples};
use tokio::sync::{Mutex, Semaphore};

const TARGET_P99_SECONDS: f64 = 0.5;

fn main() {
    support::bench_main("churn", "`make bench-churn`", run);
}

fn log(start: Instant, msg: impl std::fmt::Display) {
    eprintln!("[churn {:>7.1}s] {msg}", start.elapsed().as_secs_f64());
}

/// Wall clock, seconds since the Unix epoch (UTC).
fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to seconds since the Unix epoch.
fn parse_rfc3339(s: &str) -> Option<f64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset) = if let Some(t) = time.strip_suffix('Z').or_else(|| time.strip_suffix('z')) {
        (t, 0)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (h, mi) = time[i + 1..].split_once(':')?;
        let off = h.parse::<i64>().ok()? * 3600 + mi.parse::<i64>().ok()? * 60;
        (&time[..i], if &time[i..=i] == "-" { -off } else { off })
    };
    let mut c = clock.split(':');
    let (hh, mm, ss) = (c.next()?.parse::<i64>().ok()?, c.next()?.parse::<i64>().ok()?, c.next()?.parse::<f64>().ok()?);
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 - offset) as f64 + ss)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// AWS calls by operation, summed over services and outcomes.
async fn targets_changed(bed: &Bed, change: &str) -> u64 {
    samples(&bed.metrics().await, "alb_controller_targets_changed_total")
        .iter()
        .filter(|(l, _)| l.get("change").map(String::as_str) == Some(change))
        .map(|(_, v)| *v as u64)
        .sum()
}

fn service_name(i: usize) -> String {
    format!("svc-{i:03}")
}

fn slice_name(i: usize) -> String {
    format!("{}-1", service_name(i))
}

/// Initial endpoint `j` of slice `i`: 10.1.<i>.<10 + j> (not loopback).
fn initial_ip(i: usize, j: usize) -> String {
    format!("10.{}.{}.{}", 1 + i / 250, i % 250, 10 + j)
}

/// The `k`-th new IP of the churn: unique, in 10.128.0.0/9, host byte 1..=254.
fn churn_ip(k: usize) -> String {
    let (a, host) = (k / 254, k % 254 + 1);
    format!("10.{}.{}.{host}", 128 + a / 256, a % 256)
}

fn endpoints_json(ips: &[String]) -> serde_json::Value {
    ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect()
}

async fn create_stack(bed: &Bed, i: usize, ips: &[String]) -> Result<(), String> {
    let svc = service_name(i);
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": svc},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": slice_name(i), "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": endpoints_json(ips)
    }))
    .unwrap();
    let name = format!("ing-{i:03}");
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": 80}}}}
            ]}}]
        }
    }))
    .unwrap();
    let pp = PostParams::default();
    bed.api::<Service>().create(&pp, &service).await.map_err(|e| format!("create Service {svc}: {e}"))?;
    bed.api::<EndpointSlice>().create(&pp, &slice).await.map_err(|e| format!("create EndpointSlice: {e}"))?;
    bed.api::<Ingress>().create(&pp, &ingress).await.map_err(|e| format!("create Ingress {name}: {e}"))?;
    Ok(())
}

async fn hostnames_set(bed: &Bed) -> usize {
    let Ok(list) = bed.api::<Ingress>().list(&ListParams::default()).await else {
        return 0;
    };
    list.items
        .iter()
        .filter(|ing| {
            ing.status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .and_then(|v| v.first())
                .and_then(|i| i.hostname.as_deref())
                .is_some_and(|h| !h.is_empty())
        })
        .count()
}

/// One endpoint replacement.
struct Change {
    new_ip: String,
    old_ip: String,
    /// Wall clock just before the PATCH was sent, and when it returned.
    sent: f64,
    acked: f64,
    ok: bool,
}

/// The desired endpoints of every slice; one lock per slice, so writes to a slice are ordered.
struct State {
    slices: Vec<Mutex<Vec<String>>>,
}

async fn change_one(bed_api: kube::Api<EndpointSlice>, state: Arc<State>, s: usize, j: usize, new_ip: String) -> Change {
    let mut eps = state.slices[s].lock().await;
    let old_ip = std::mem::replace(&mut eps[j], new_ip.clone());
    let patch = json!({"endpoints": endpoints_json(&eps)});
    let sent = now_unix();
    let r = bed_api.patch(&slice_name(s), &PatchParams::default(), &Patch::Merge(&patch)).await;
    let acked = now_unix();
    if let Err(e) = &r {
        eprintln!("[churn] patch {} failed: {e}", slice_name(s));
        eps[j] = old_ip.clone();
    }
    Change { new_ip, old_ip, sent, acked, ok: r.is_ok() }
}

/// `registered targets` / `deregistered targets` lines of the JSON log: IP -> first time.
fn target_log_times(path: &std::path::Path) -> (HashMap<String, f64>, HashMap<String, f64>, usize, usize, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut reg, mut dereg) = (HashMap::new(), HashMap::new());
    let (mut non_json, mut warns, mut errors) = (0, 0, 0);
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            non_json += 1;
            continue;
        };
        match v["level"].as_str() {
            Some("WARN") => warns += 1,
            Some("ERROR") => errors += 1,
            _ => {}
        }
        let map = match v["fields"]["message"].as_str() {
            Some("registered targets") => &mut reg,
            Some("deregistered targets") => &mut dereg,
            _ => continue,
        };
        let (Some(ts), Some(ips)) = (v["timestamp"].as_str().and_then(parse_rfc3339), v["fields"]["ips"].as_str()) else {
            continue;
        };
        for ip in ips.split(',').filter(|s| !s.is_empty()) {
            map.entry(ip.to_string()).or_insert(ts);
        }
    }
    (reg, dereg, non_json, warns, errors)
}

struct Lat {
    sorted: Vec<f64>,
    never: usize,
    superseded: usize,
}

impl Lat {
    fn line(&self) -> String {
        let p = |q| percentile(&self.sorted, q);
        format!(
            "p50 {:.3} s   p90 {:.3} s   p99 {:.3} s   max {:.3} s   (n = {})",
            p(0.5),
            p(0.9),
            p(0.99),
            self.sorted.last().copied().unwrap_or(f64::NAN),
            self.sorted.len()
        )
    }
}

async fn run() -> i32 {
    let n: usize = env_or("CHURN_INGRESSES", 50);
    let per: usize = env_or("CHURN_ENDPOINTS", 40);
    let rate: f64 = env_or("CHURN_RATE", 100.0);
    let seconds: f64 = env_or("CHURN_SECONDS", 60.0);
    let in_flight: usize = env_or("CHURN_IN_FLIGHT", 4);
    let setup_timeout = Duration::from_secs(env_or("CHURN_SETUP_TIMEOUT_SECS", 600));
    let burst_slices: usize = env_or("CHURN_BURST_SLICES", 10usize).min(n);
    // initial_ip keeps the second octet below 128 (is_initial) and the host byte below 255.
    assert!(per <= 200 && n <= 25_000, "CHURN_ENDPOINTS <= 200 and CHURN_INGRESSES <= 25000");
    assert_eq!(parse_rfc3339("2026-11-26T14:13:14.5Z"), Some(1_795_702_394.5), "RFC 3339 parser");
    let total_endpoints = n * per;
    let t_bench = Instant::now();

    let mut bed = Bed::start_from_env_with_args("churn", &["--log-json"]).await;
    let pid = bed.controller_pid();
    log(t_bench, format_args!("namespace {} account {} controller pid {pid} log {}", bed.ns, bed.account, bed.log.display()));
    if let Err(e) = bed.wait_metrics_up().await {
        eprintln!("[churn] {e}");
        return 2;
    }

    // ---- setup: n Ingresses, n * per endpoints ----
    let initial: Vec<Vec<String>> = (0..n).map(|i| (0..per).map(|j| initial_ip(i, j)).collect()).collect();
    log(t_bench, format_args!("creating {n} Services + EndpointSlices ({per} endpoints each) + Ingresses"));
    let t_setup = Instant::now();
    let created: Vec<Result<(), String>> =
        stream::iter(0..n).map(|i| create_stack(&bed, i, &initial[i])).buffer_unordered(8).collect().await;
    if let Err(e) = created.into_iter().collect::<Result<Vec<()>, String>>() {
        eprintln!("[churn] {e}");
        return 2;
    }
    let mut last_progress = Instant::now();
    loop {
        let (hosts, registered) = (hostnames_set(&bed).await, targets_changed(&bed, "registered").await);
        if hosts >= n && registered >= total_endpoints as u64 {
            break;
        }
        if let Some(status) = bed.controller_exited() {
            eprintln!("[churn] the controller exited during setup ({status}); log: {}", bed.log.display());
            return 2;
        }
        if t_setup.elapsed() > setup_timeout {
            eprintln!("[churn] setup timed out: {hosts}/{n} hostnames, {registered}/{total_endpoints} targets registered");
            return 1;
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            log(t_bench, format_args!("{hosts}/{n} hostnames, {registered}/{total_endpoints} targets registered"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let setup_time = t_setup.elapsed();
    if bed.wait_quiet_for(Duration::from_secs(3), Duration::from_secs(180)).await.is_none() {
        eprintln!("[churn] the controller never went quiet after setup (log: {})", bed.log.display());
        return 1;
    }
    let (hwm_setup, rss_setup) = memory_kib(pid);
    log(
        t_bench,
        format_args!(
            "setup converged in {:.1}s; churning {rate}/s for {seconds}s ({in_flight} writes in flight)",
            setup_time.as_secs_f64()
        ),
    );

    // ---- churn ----
    let calls_before = bed.aws_calls().await;
    let reconciles_before = bed.reconciles().await;
    let cpu_before = cpu_seconds(pid);
    let state = Arc::new(State { slices: initial.into_iter().map(Mutex::new).collect() });
    let api = bed.api::<EndpointSlice>();
    let sem = Arc::new(Semaphore::new(in_flight));
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    let mut changes: Vec<Change> = Vec::new();
    let t_churn = Instant::now();
    let churn_for = Duration::from_secs_f64(seconds);
    let mut k = 0;
    while t_churn.elapsed() < churn_for {
        interval.tick().await;
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (s, j) = (rand::random_range(0..n), rand::random_range(0..per));
        let (api, state, ip) = (api.clone(), state.clone(), churn_ip(k));
        k += 1;
        tasks.spawn(async move {
            let c = change_one(api, state, s, j, ip).await;
            drop(permit);
            c
        });
        while let Some(done) = tasks.try_join_next() {
            changes.push(done.expect("change task"));
        }
    }
    while let Some(done) = tasks.join_next().await {
        changes.push(done.expect("change task"));
    }
    let churn_wall = t_churn.elapsed().as_secs_f64();
    log(t_bench, format_args!("{} changes in {churn_wall:.1}s; waiting for the controller to go quiet", changes.len()));
    let t_drain = Instant::now();
    let quiet = bed.wait_quiet_for(Duration::from_secs(3), Duration::from_secs(300)).await;
    let drain = t_drain.elapsed().as_secs_f64() - 3.0;
    let calls_after = bed.aws_calls().await;
    let reconciles_churn = bed.reconciles().await - reconciles_before;
    let cpu_churn = cpu_seconds(pid) - cpu_before;

    // ---- bursts: rolling updates of several slices at once ----
    log(t_bench, format_args!("bursts: a rolling update of {burst_slices} slices at once ({per} endpoints each, one PATCH per endpoint)"));
    let burst_calls_before = bed.aws_calls().await;
    let t_burst = Instant::now();
    let rollouts: Vec<Vec<Change>> = stream::iter(0..burst_slices)
        .map(|s| {
            let (api, state, first) = (api.clone(), state.clone(), k + s * per);
            async move {
                let mut done = Vec::new();
                for j in 0..per {
                    done.push(change_one(api.clone(), state.clone(), s, j, churn_ip(first + j)).await);
                }
                done
            }
        })
        .buffer_unordered(burst_slices.max(1))
        .collect()
        .await;
    let burst_wall = t_burst.elapsed().as_secs_f64();
    let burst_quiet = bed.wait_quiet_for(Duration::from_secs(3), Duration::from_secs(300)).await;
    let burst_calls_after = bed.aws_calls().await;
    let (hwm_end, rss_end) = memory_kib(pid);

    // ---- final state: every target group holds exactly its slice's endpoints ----
    let desired: Vec<BTreeSet<(String, i32)>> = {
        let mut v = Vec::new();
        for s in &state.slices {
            v.push(s.lock().await.iter().map(|ip| (ip.clone(), 8080)).collect());
        }
        v
    };
    let tgs = bed.elbv2.describe_target_groups().send().await.map(|o| o.target_groups.unwrap_or_default()).unwrap_or_default();
    let mut actual = Vec::new();
    for tg in &tgs {
        if let Some(arn) = tg.target_group_arn() {
            actual.push(bed.targets(arn).await);
        }
    }
    let matched = desired.iter().filter(|d| actual.contains(d)).count();

    // ---- latency from the log ----
    let (reg, dereg, non_json, warns, errors) = target_log_times(&bed.log);
    let ok: Vec<&Change> = changes.iter().filter(|c| c.ok).collect();
    let failed_writes = changes.len() - ok.len();
    let removed: HashMap<&str, f64> = ok.iter().map(|c| (c.old_ip.as_str(), c.sent)).collect();
    let latency = |times: &HashMap<String, f64>, pick: &dyn Fn(&Change) -> &str, superseded_check: bool| {
        let mut sorted = Vec::new();
        let (mut never, mut superseded) = (0, 0);
        for c in &ok {
            match times.get(pick(c)) {
                Some(t) => sorted.push(t - c.sent),
                None if superseded_check && removed.contains_key(c.new_ip.as_str()) => superseded += 1,
                None => never += 1,
            }
        }
        sorted.sort_by(f64::total_cmp);
        Lat { sorted, never, superseded }
    };
    let reg_lat = latency(&reg, &|c| c.new_ip.as_str(), true);
    // An IP added and removed again before it was registered is never deregistered either.
    let dereg_lat = {
        let mut l = latency(&dereg, &|c| c.old_ip.as_str(), false);
        let unregistered_old = ok
            .iter()
            .filter(|c| !dereg.contains_key(c.old_ip.as_str()) && !is_initial(&c.old_ip) && !reg.contains_key(c.old_ip.as_str()))
            .count();
        l.never -= unregistered_old;
        l.superseded = unregistered_old;
        l
    };
    // A rollout is done when its last new IP is registered (earlier ones may be skipped
    // by the debounce: replaced again before their update ran is not possible here, each
    // endpoint is replaced once).
    let mut rollout_done: Vec<f64> = rollouts
        .iter()
        .filter_map(|r| {
            let last = r.iter().filter(|c| c.ok).max_by(|a, b| a.sent.total_cmp(&b.sent))?;
            let registered = r.iter().filter(|c| c.ok).map(|c| reg.get(&c.new_ip).copied()).collect::<Option<Vec<f64>>>()?;
            Some(registered.into_iter().fold(f64::MIN, f64::max) - last.sent)
        })
        .collect();
    rollout_done.sort_by(f64::total_cmp);
    let burst_changes = rollouts.iter().flatten().filter(|c| c.ok).count() as u64;
    let burst_target_calls = ["RegisterTargets", "DeregisterTargets"]
        .iter()
        .map(|o| burst_calls_after.get(*o).copied().unwrap_or(0) - burst_calls_before.get(*o).copied().unwrap_or(0))
        .sum::<u64>();
    let burst_per_change = if burst_changes == 0 { f64::NAN } else { burst_target_calls as f64 / burst_changes as f64 };
    let mut write_ms: Vec<f64> = ok.iter().map(|c| (c.acked - c.sent) * 1000.0).collect();
    write_ms.sort_by(f64::total_cmp);

    let changes_n = ok.len() as u64;
    let op = |m: &BTreeMap<String, u64>, name: &str| m.get(name).copied().unwrap_or(0);
    let reg_calls = op(&calls_after, "RegisterTargets") - op(&calls_before, "RegisterTargets");
    let dereg_calls = op(&calls_after, "DeregisterTargets") - op(&calls_before, "DeregisterTargets");
    let all_calls: u64 = calls_after.values().sum::<u64>() - calls_before.values().sum::<u64>();
    let per_change = |x: u64| if changes_n == 0 { f64::NAN } else { x as f64 / changes_n as f64 };
    let mut other_ops: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in &calls_after {
        let d = v - calls_before.get(k).copied().unwrap_or(0);
        if d > 0 && k != "RegisterTargets" && k != "DeregisterTargets" {
            other_ops.insert(k.clone(), d);
        }
    }
    let hwm = hwm_setup.max(hwm_end);
    let p99 = percentile(&reg_lat.sorted, 0.99);

    // ---- report ----
    println!();
    println!("== alb-controller churn bench: {n} Ingresses / target groups, {total_endpoints} endpoints, {rate}/s for {seconds} s ==");
    println!("controller     {}", std::env::var("ALB_CONTROLLER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_alb-controller").into()));
    println!("log            {}", bed.log.display());
    println!();
    println!("Setup");
    println!("  hostnames set + {total_endpoints} targets registered   {:>7.1} s", setup_time.as_secs_f64());
    println!();
    println!("Churn (one endpoint of a random slice replaced by a new IP per change)");
    println!(
        "  changes written              {:>8}  in {churn_wall:.1} s = {:.1}/s (asked {rate}/s), failed writes {failed_writes}",
        changes_n,
        changes_n as f64 / churn_wall
    );
    println!(
        "  EndpointSlice PATCH          p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        percentile(&write_ms, 0.5),
        percentile(&write_ms, 0.99),
        write_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  controller quiet             {}",
        match quiet {
            Some(_) => format!("{drain:.1} s after the last write"),
            None => "NOT within 300 s".into(),
        }
    );
    println!("  reconciles during churn      {reconciles_churn:>8}  ({:.2} per change)", per_change(reconciles_churn));
    println!();
    println!("Latency, EndpointSlice write -> controller log of the AWS call (returned)");
    println!("  new IP registered            {}", reg_lat.line());
    println!("    never registered           {:>8}  (+ {} replaced again before being registered)", reg_lat.never, reg_lat.superseded);
    println!("    p99 target <= {TARGET_P99_SECONDS} s          {}", if p99 <= TARGET_P99_SECONDS { "met" } else { "MISSED" });
    println!("  old IP deregistered          {}", dereg_lat.line());
    println!("    never deregistered         {:>8}  (+ {} never registered)", dereg_lat.never, dereg_lat.superseded);
    println!();
    println!("AWS calls during churn + drain");
    println!("  RegisterTargets              {reg_calls:>8}  ({:.3} per change)", per_change(reg_calls));
    println!("  DeregisterTargets            {dereg_calls:>8}  ({:.3} per change)", per_change(dereg_calls));
    println!("  Register + Deregister        {:>8}  ({:.3} per change)", reg_calls + dereg_calls, per_change(reg_calls + dereg_calls));
    println!("  all operations               {all_calls:>8}  ({:.3} per change)", per_change(all_calls));
    for (op, v) in &other_ops {
        println!("    {op:<26} {v:>8}");
    }
    println!();
    println!("Bursts (rolling updates of {burst_slices} slices at once, {per} endpoints each, one PATCH per endpoint)");
    println!(
        "  changes written              {burst_changes:>8}  in {burst_wall:.1} s = {:.1}/s",
        burst_changes as f64 / burst_wall.max(f64::MIN_POSITIVE)
    );
    println!(
        "  Register + Deregister        {burst_target_calls:>8}  ({burst_per_change:.3} per change: {:.0} changes per call)",
        1.0 / burst_per_change
    );
    println!(
        "  rollout fully registered     p50 {:.3} s   max {:.3} s after its last write  ({} of {burst_slices} rollouts){}",
        percentile(&rollout_done, 0.5),
        rollout_done.last().copied().unwrap_or(f64::NAN),
        rollout_done.len(),
        if burst_quiet.is_some() { "" } else { "; controller NOT quiet within 300 s" }
    );
    println!();
    println!("Final state");
    println!("  target groups holding exactly their slice's endpoints   {matched}/{n}  ({} target groups in the account)", tgs.len());
    println!();
    println!("Controller process (pid {pid})");
    println!("  peak RSS (VmHWM)             {:>8.1} MiB  (after setup {:.1} MiB)", hwm as f64 / 1024.0, hwm_setup as f64 / 1024.0);
    println!("  RSS after setup / end        {:>8.1} / {:.1} MiB", rss_setup as f64 / 1024.0, rss_end as f64 / 1024.0);
    println!("  CPU time during churn        {cpu_churn:>8.2} s  ({:.0} % of a core)", 100.0 * cpu_churn / (churn_wall + drain.max(0.0)));
    println!("  log                          {warns} WARN, {errors} ERROR, {non_json} non-JSON lines");
    println!();

    let r3 = |x: f64| if x.is_finite() { (x * 1000.0).round() / 1000.0 } else { -1.0 };
    println!(
        "{}",
        json!({
            "bench": "churn",
            "ingresses": n,
            "endpoints": total_endpoints,
            "rate_asked": rate,
            "seconds": seconds,
            "changes": changes_n,
            "failed_writes": failed_writes,
            "rate_achieved": r3(changes_n as f64 / churn_wall),
            "setup_seconds": r3(setup_time.as_secs_f64()),
            "register_latency_p50_seconds": r3(percentile(&reg_lat.sorted, 0.5)),
            "register_latency_p90_seconds": r3(percentile(&reg_lat.sorted, 0.9)),
            "register_latency_p99_seconds": r3(p99),
            "register_latency_max_seconds": r3(reg_lat.sorted.last().copied().unwrap_or(f64::NAN)),
            "never_registered": reg_lat.never,
            "superseded_before_registration": reg_lat.superseded,
            "deregister_latency_p50_seconds": r3(percentile(&dereg_lat.sorted, 0.5)),
            "deregister_latency_p99_seconds": r3(percentile(&dereg_lat.sorted, 0.99)),
            "never_deregistered": dereg_lat.never,
            "register_calls": reg_calls,
            "deregister_calls": dereg_calls,
            "target_calls_per_change": r3(per_change(reg_calls + dereg_calls)),
            "aws_calls_per_change": r3(per_change(all_calls)),
            "reconciles": reconciles_churn,
            "burst_changes": burst_changes,
            "burst_target_calls": burst_target_calls,
            "burst_target_calls_per_change": r3(burst_per_change),
            "burst_rollout_registered_max_seconds": r3(rollout_done.last().copied().unwrap_or(f64::NAN)),
            "final_state_matched": matched,
            "peak_rss_mib": r3(hwm as f64 / 1024.0),
            "cpu_seconds_churn": r3(cpu_churn),
            "p99_target_met": p99 <= TARGET_P99_SECONDS,
            "log_warn_lines": warns,
            "log_error_lines": errors,
        })
    );
    drop(bed);
    i32::from(quiet.is_none() || burst_quiet.is_none() || matched != n || reg_lat.never > 0 || dereg_lat.never > 0)
}

fn is_initial(ip: &str) -> bool {
    ip.split('.').nth(1).and_then(|o| o.parse::<u32>().ok()).is_none_or(|o| o < 128)
}
