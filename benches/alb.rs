//! `make bench-alb` (and the first part of `make bench`): N Ingresses (env `BENCH_INGRESSES`, default 200; 2 paths each, with their
//! Services and EndpointSlices) on the real bed, and a report of
//! - the wall time until every Ingress has a hostname,
//! - the AWS calls by operation, per Ingress,
//! - the AWS calls made by a full resync after convergence (an IngressClass change),
//! - the AWS calls of one drift-check round over the converged Ingresses (reads only, writes
//!   counted apart: a write there is a false repair),
//! - the controller's peak RSS,
//! - LocalStack's raw rate for a simple call, measured in the same run, and the controller's
//!   call rate during convergence as a fraction of it.
//!
//! Runs only under `cargo bench` (which passes `--bench`); `cargo test --all-targets` builds
//! it and returns at once. Needs the bed (`hack/bench.sh` starts one).
//!
//! Knobs (env): BENCH_INGRESSES (200), BENCH_TIMEOUT_SECS (1200), BENCH_CREATE_CONCURRENCY (16),
//! BENCH_RAW_CALLS (300), BENCH_RAW_CONCURRENCY (8), BENCH_DRIFT_SECS (120: the controller's
//! drift-check interval; longer than convergence, so rounds only start after it),
//! ALB_CONTROLLER_BIN (the controller binary).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{Bed, cpu_seconds, env_or, is_mutating, memory_kib, samples};

fn main() {
    support::bench_main("alb", "`make bench` / `make bench-alb`", run);
}

fn log(start: Instant, msg: impl std::fmt::Display) {
    eprintln!("[bench {:>7.1}s] {msg}", start.elapsed().as_secs_f64());
}

/// AWS calls keyed by (operation, outcome), summed over services.
type Calls = BTreeMap<(String, String), u64>;

async fn aws_calls(bed: &Bed) -> Calls {
    let mut out = Calls::new();
    for (labels, v) in samples(&bed.metrics().await, "alb_controller_aws_api_calls_total") {
        let op = labels.get("operation").cloned().unwrap_or_default();
        let outcome = labels.get("outcome").cloned().unwrap_or_default();
        *out.entry((op, outcome)).or_default() += v as u64;
    }
    out
}

fn delta(after: &Calls, before: &Calls) -> Calls {
    after.iter().map(|(k, v)| (k.clone(), v.saturating_sub(before.get(k).copied().unwrap_or(0)))).filter(|(_, v)| *v > 0).collect()
}

fn by_operation(calls: &Calls) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((op, _), v) in calls {
        *out.entry(op.clone()).or_default() += v;
    }
    out
}

fn total(calls: &Calls) -> u64 {
    calls.values().sum()
}

async fn reconciles_by_result(bed: &Bed) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (labels, v) in samples(&bed.metrics().await, "alb_controller_reconciles_total") {
        *out.entry(labels.get("result").cloned().unwrap_or_default()).or_default() += v as u64;
    }
    out
}

fn service_name(i: usize) -> String {
    format!("svc-{i:04}")
}

fn ingress_name(i: usize) -> String {
    format!("ing-{i:04}")
}

/// Not loopback: 10.<1 + i/250>.<i%250>.{10,11}.
fn endpoint_ips(i: usize) -> [String; 2] {
    let (a, b) = (1 + i / 250, i % 250);
    [format!("10.{a}.{b}.10"), format!("10.{a}.{b}.11")]
}

async fn create_backend(bed: &Bed, i: usize) -> Result<(), String> {
    let svc = service_name(i);
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": svc},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let endpoints: Vec<_> = endpoint_ips(i).iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{svc}-1"), "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": endpoints
    }))
    .unwrap();
    let pp = PostParams::default();
    bed.api::<Service>().create(&pp, &service).await.map_err(|e| format!("create Service {svc}: {e}"))?;
    bed.api::<EndpointSlice>().create(&pp, &slice).await.map_err(|e| format!("create EndpointSlice {svc}-1: {e}"))?;
    Ok(())
}

async fn create_ingress(bed: &Bed, i: usize) -> Result<(), String> {
    let svc = service_name(i);
    let name = ingress_name(i);
    let backend = json!({"service": {"name": svc, "port": {"number": 80}}});
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"http": {"paths": [
                {"path": "/api", "pathType": "Prefix", "backend": backend},
                {"path": "/health", "pathType": "Exact", "backend": backend}
            ]}}]
        }
    }))
    .unwrap();
    bed.api::<Ingress>().create(&PostParams::default(), &ingress).await.map_err(|e| format!("create Ingress {name}: {e}"))?;
    Ok(())
}

async fn create_all<F, Fut>(n: usize, concurrency: usize, f: F) -> Result<(), String>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let results: Vec<Result<(), String>> = stream::iter(0..n).map(f).buffer_unordered(concurrency).collect().await;
    results.into_iter().collect()
}

struct Raw {
    calls: usize,
    errors: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Raw {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.seconds
    }
}

/// LocalStack's raw rate: `calls` DescribeLoadBalancers (page size 1) with `concurrency`
/// in flight, with the bench account's credentials.
async fn raw_rate(client: &elbv2::Client, calls: usize, concurrency: usize) -> Raw {
    let one = |c: elbv2::Client| async move {
        let t = Instant::now();
        let ok = c.describe_load_balancers().page_size(1).send().await.is_ok();
        (t.elapsed(), ok)
    };
    // Warm up the connection pool.
    stream::iter(0..concurrency).map(|_| one(client.clone())).buffer_unordered(concurrency).collect::<Vec<_>>().await;
    let start = Instant::now();
    let results: Vec<(Duration, bool)> = stream::iter(0..calls).map(|_| one(client.clone())).buffer_unordered(concurrency).collect().await;
    let seconds = start.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = results.iter().map(|(d, _)| d.as_secs_f64() * 1000.0).collect();
    lat.sort_by(f64::total_cmp);
    Raw {
        calls,
        errors: results.iter().filter(|(_, ok)| !ok).count(),
        seconds,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Lines of the controller log at WARN or ERROR level: (count, a few distinct examples).
fn log_problems(path: &std::path::Path) -> (usize, usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut warns, mut errors) = (0, 0);
    let mut examples: Vec<String> = Vec::new();
    for line in text.lines() {
        let plain: String = strip_ansi(line);
        let is_err = plain.contains(" ERROR ");
        let is_warn = plain.contains(" WARN ");
        if is_err {
            errors += 1;
        }
        if is_warn {
            warns += 1;
        }
        if (is_err || is_warn) && examples.len() < 5 {
            let short: String = plain.chars().take(300).collect();
            // One example per message kind: compare from the level on, ignoring the timestamp.
            let key: String = short
                .split_once(" WARN ")
                .or_else(|| short.split_once(" ERROR "))
                .map(|(_, r)| r)
                .unwrap_or(&short)
                .chars()
                .take(60)
                .collect();
            if !examples.iter().any(|e| e.contains(&key)) {
                examples.push(short);
            }
        }
    }
    (warns, errors, examples)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn hostnames(bed: &Bed) -> Vec<(String, bool)> {
    match bed.api::<Ingress>().list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .map(|ing| {
                let has = ing
                    .status
                    .and_then(|s| s.load_balancer)
                    .and_then(|lb| lb.ingress)
                    .and_then(|v| v.first().and_then(|i| i.hostname.clone()))
                    .is_some_and(|h| !h.is_empty());
                (ing.metadata.name.unwrap_or_default(), has)
            })
            .collect(),
        Err(e) => {
            eprintln!("[bench] listing Ingresses failed: {e}");
            Vec::new()
        }
    }
}

fn print_calls_table(title: &str, calls: &Calls, n: usize) {
    let ops = by_operation(calls);
    println!("{title}");
    println!("  {:<34} {:>8} {:>12}", "operation", "calls", "per Ingress");
    for (op, v) in &ops {
        let kind = if is_mutating(op) { "" } else { "  (read)" };
        println!("  {op:<34} {v:>8} {:>12.2}{kind}", *v as f64 / n as f64);
    }
    let t = total(calls);
    let mutating: u64 = ops.iter().filter(|(op, _)| is_mutating(op)).map(|(_, v)| v).sum();
    println!("  {:<34} {t:>8} {:>12.2}", "TOTAL", t as f64 / n as f64);
    println!("  {:<34} {mutating:>8} {:>12.2}", "  of which mutating", mutating as f64 / n as f64);
    println!("  {:<34} {:>8} {:>12.2}", "  of which reads", t - mutating, (t - mutating) as f64 / n as f64);
    let failed: Vec<_> = calls.iter().filter(|((_, outcome), _)| outcome != "success" && outcome != "ok").collect();
    if !failed.is_empty() {
        println!("  non-success outcomes:");
        for ((op, outcome), v) in failed {
            println!("    {op} {outcome}: {v}");
        }
    }
}

async fn run() -> i32 {
    let n: usize = env_or("BENCH_INGRESSES", 200);
    let timeout = Duration::from_secs(env_or("BENCH_TIMEOUT_SECS", 1200));
    let create_concurrency: usize = env_or("BENCH_CREATE_CONCURRENCY", 16);
    let raw_calls: usize = env_or("BENCH_RAW_CALLS", 300);
    let raw_concurrency: usize = env_or("BENCH_RAW_CONCURRENCY", 8);
    let drift_secs: u64 = env_or("BENCH_DRIFT_SECS", 120);
    let t_bench = Instant::now();

    let drift_flag = format!("{drift_secs}s");
    let mut bed = Bed::start_from_env_with_args("bench", &["--drift-check-interval", &drift_flag]).await;
    let pid = bed.controller_pid();
    log(t_bench, format_args!("namespace {} account {} controller pid {pid} log {}", bed.ns, bed.account, bed.log.display()));
    if let Err(e) = bed.wait_metrics_up().await {
        eprintln!("[bench] {e}");
        return 2;
    }

    log(t_bench, format_args!("LocalStack raw rate (empty account): {raw_calls} DescribeLoadBalancers, {raw_concurrency} in flight"));
    let raw_before = raw_rate(&bed.elbv2, raw_calls, raw_concurrency).await;
    log(t_bench, format_args!("  {:.0} calls/s", raw_before.rate()));

    let calls_start = aws_calls(&bed).await;
    let reconciles_start = bed.reconciles().await;

    // ---- create everything, as fast as the API server takes it ----
    log(t_bench, format_args!("creating {n} Services + EndpointSlices, then {n} Ingresses ({create_concurrency} in flight)"));
    let t0 = Instant::now();
    if let Err(e) = create_all(n, create_concurrency, |i| create_backend(&bed, i)).await {
        eprintln!("[bench] {e}");
        return 2;
    }
    let t_backends = t0.elapsed();
    if let Err(e) = create_all(n, create_concurrency, |i| create_ingress(&bed, i)).await {
        eprintln!("[bench] {e}");
        return 2;
    }
    let t_created = t0.elapsed();
    log(t_bench, format_args!("created in {:.1}s (backends {:.1}s)", t_created.as_secs_f64(), t_backends.as_secs_f64()));

    // ---- poll until every Ingress has a hostname ----
    let mut first_seen: BTreeMap<String, Duration> = BTreeMap::new();
    let mut last_progress = Instant::now();
    let mut exited = None;
    let converged = loop {
        for (name, has) in hostnames(&bed).await {
            if has {
                first_seen.entry(name).or_insert_with(|| t0.elapsed());
            }
        }
        if first_seen.len() >= n {
            break true;
        }
        if let Some(status) = bed.controller_exited() {
            exited = Some(status);
            break false;
        }
        if t0.elapsed() > timeout {
            break false;
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            let c = total(&delta(&aws_calls(&bed).await, &calls_start));
            log(t_bench, format_args!("{}/{n} hostnames, {c} AWS calls so far", first_seen.len()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let wall = t0.elapsed();
    let calls_at_hostnames = if exited.is_none() { delta(&aws_calls(&bed).await, &calls_start) } else { Calls::new() };
    let (hwm_kib, rss_kib) = memory_kib(pid);
    let cpu_converge = cpu_seconds(pid);

    if !converged {
        let why = match exited {
            Some(status) => format!("the controller exited ({status})"),
            None => format!("timed out after {:.0}s", timeout.as_secs_f64()),
        };
        println!();
        println!("== alb-controller bench: NOT CONVERGED: {why}: {}/{n} Ingresses have a hostname", first_seen.len());
        if exited.is_none() {
            print_calls_table("AWS calls so far", &calls_at_hostnames, n);
            println!("reconciles by result: {:?}", reconciles_by_result(&bed).await);
        }
        let (warns, errors, examples) = log_problems(&bed.log);
        println!("controller log {}: {warns} WARN, {errors} ERROR lines", bed.log.display());
        for e in examples {
            println!("  {e}");
        }
        println!(
            "{}",
            json!({"ingresses": n, "converged": false, "hostnames": first_seen.len(), "wall_seconds": wall.as_secs_f64(),
                   "aws_calls_total": total(&calls_at_hostnames)})
        );
        drop(bed);
        return 1;
    }
    log(t_bench, format_args!("all {n} hostnames set after {:.1}s; waiting for the controller to go quiet", wall.as_secs_f64()));

    // ---- settle: anything the controller does after the last hostname ----
    let quiet = Duration::from_secs(3);
    let Some(reconciles_converged) = bed.wait_quiet_for(quiet, Duration::from_secs(180)).await else {
        eprintln!("[bench] the controller never went quiet after convergence (log: {})", bed.log.display());
        return 1;
    };
    let calls_at_quiet = aws_calls(&bed).await;
    let calls_converge = delta(&calls_at_quiet, &calls_start);
    let tail_calls = total(&calls_converge) - total(&calls_at_hostnames);
    let reconciles_converge = reconciles_converged - reconciles_start;

    // ---- full resync: touch the IngressClass, every Ingress is reconciled again ----
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
    log(t_bench, "full resync: annotating IngressClass alb");
    let t_resync = Instant::now();
    Api::<IngressClass>::all(bed.client.clone())
        .patch("alb", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {"bench/touch": stamp}}})))
        .await
        .expect("patch IngressClass alb");
    let want = reconciles_converged + n as u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut resynced = true;
    while bed.reconciles().await < want {
        if Instant::now() > deadline {
            resynced = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resync_time = t_resync.elapsed();
    let reconciles_after = bed.wait_quiet_for(quiet, Duration::from_secs(180)).await.unwrap_or(bed.reconciles().await);
    let calls_resync = delta(&aws_calls(&bed).await, &calls_at_quiet);
    let reconciles_resync = reconciles_after - reconciles_converged;
    log(
        t_bench,
        format_args!("resync: {reconciles_resync} reconciles in {:.2}s, {} AWS calls", resync_time.as_secs_f64(), total(&calls_resync)),
    );

    // ---- one drift-check round: each Ingress (its own group here) is requeued one interval
    // after its resync reconcile, finds its cached state stale and reads AWS again ----
    if wall.as_secs() >= drift_secs {
        log(t_bench, format_args!("note: convergence took longer than the drift-check interval ({drift_secs}s): rounds overlapped it"));
    }
    log(t_bench, format_args!("drift round: waiting for every load balancer's listeners to be read again (interval {drift_secs}s)"));
    let calls_before_drift = aws_calls(&bed).await;
    let listeners_read = |calls: &Calls| by_operation(calls).get("DescribeListeners").copied().unwrap_or(0);
    let want_reads = listeners_read(&calls_before_drift) + n as u64;
    let drift_deadline = Instant::now() + Duration::from_secs(drift_secs * 6 / 5 + 180);
    let mut drift_done = true;
    while listeners_read(&aws_calls(&bed).await) < want_reads {
        if Instant::now() > drift_deadline {
            drift_done = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bed.wait_quiet_for(quiet, Duration::from_secs(180)).await;
    let calls_drift = delta(&aws_calls(&bed).await, &calls_before_drift);
    let drift_writes: u64 = by_operation(&calls_drift).iter().filter(|(op, _)| is_mutating(op)).map(|(_, v)| v).sum();
    log(t_bench, format_args!("drift round: {} AWS calls, {drift_writes} of them writes", total(&calls_drift)));

    log(t_bench, format_args!("LocalStack raw rate (with {n} load balancers in the account)"));
    let raw_after = raw_rate(&bed.elbv2, raw_calls, raw_concurrency).await;
    log(t_bench, format_args!("  {:.0} calls/s", raw_after.rate()));

    let (hwm_end, rss_end) = memory_kib(pid);
    let hwm_kib = hwm_kib.max(hwm_end);
    let cpu_total = cpu_seconds(pid);
    let results = reconciles_by_result(&bed).await;
    let (warns, errors, examples) = log_problems(&bed.log);

    // ---- report ----
    let mut times: Vec<f64> = first_seen.values().map(Duration::as_secs_f64).collect();
    times.sort_by(f64::total_cmp);
    let conv_calls = total(&calls_at_hostnames);
    let ctl_rate = conv_calls as f64 / wall.as_secs_f64();
    let per_ingress = total(&calls_converge) as f64 / n as f64;

    println!();
    println!("== alb-controller bench: {n} Ingresses (2 paths, 1 Service, 2 endpoints each) ==");
    println!("controller     {}", std::env::var("ALB_CONTROLLER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_alb-controller").into()));
    println!("log            {}", bed.log.display());
    println!();
    println!("Convergence");
    println!(
        "  objects created in           {:>8.1} s  ({} objects, backends in {:.1} s)",
        t_created.as_secs_f64(),
        3 * n,
        t_backends.as_secs_f64()
    );
    println!("  wall time, every hostname    {:>8.1} s  (from the first create)", wall.as_secs_f64());
    println!(
        "  hostname set at              p50 {:.1} s   p90 {:.1} s   first {:.1} s   last {:.1} s",
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        times.first().copied().unwrap_or(0.0),
        times.last().copied().unwrap_or(0.0)
    );
    println!("  throughput                   {:>8.2} Ingresses/s", n as f64 / wall.as_secs_f64());
    println!("  reconciles                   {reconciles_converge:>8}  ({:.2} per Ingress)", reconciles_converge as f64 / n as f64);
    println!("  AWS calls after last hostname {tail_calls:>7}  (until quiet)");
    println!();
    print_calls_table("AWS calls during convergence, by operation", &calls_converge, n);
    println!();
    println!("Full resync after convergence (IngressClass annotated)");
    println!(
        "  reconciles                   {reconciles_resync:>8}  (wanted >= {n}{})",
        if resynced { "" } else { "; NOT reached within 300 s" }
    );
    println!("  time to {n} reconciles       {:>8.2} s", resync_time.as_secs_f64());
    println!("  AWS calls                    {:>8}  (target: 0)", total(&calls_resync));
    for (op, v) in by_operation(&calls_resync) {
        println!("    {op:<32} {v:>6}");
    }
    println!();
    println!("One drift-check round over the converged Ingresses (interval {drift_secs} s)");
    if !drift_done {
        println!("  NOT every load balancer was read again within the deadline");
    }
    println!("  AWS calls                    {:>8}  ({:.2} per Ingress)", total(&calls_drift), total(&calls_drift) as f64 / n as f64);
    println!("  of which writes              {drift_writes:>8}  (target: 0; a write here is a false repair)");
    for (op, v) in by_operation(&calls_drift) {
        println!("    {op:<32} {v:>6}");
    }
    println!();
    println!("Controller process (pid {pid})");
    println!("  peak RSS (VmHWM)             {:>8.1} MiB", hwm_kib as f64 / 1024.0);
    println!("  RSS at convergence / end     {:>8.1} / {:.1} MiB", rss_kib as f64 / 1024.0, rss_end as f64 / 1024.0);
    println!("  CPU time converge / total    {cpu_converge:>8.2} / {cpu_total:.2} s");
    println!("  reconciles by result         {results:?}");
    println!("  log                          {warns} WARN, {errors} ERROR lines");
    for e in &examples {
        println!("    {e}");
    }
    println!();
    println!("LocalStack raw rate: DescribeLoadBalancers (PageSize 1), {raw_concurrency} in flight, {raw_calls} calls");
    for (label, r) in [("empty account", &raw_before), (&*format!("{n} LBs in account"), &raw_after)] {
        println!("  {label:<20} {:>8.0} calls/s   p50 {:.1} ms   p99 {:.1} ms   errors {}", r.rate(), r.p50_ms, r.p99_ms, r.errors);
    }
    println!();
    println!("Controller vs emulator");
    println!("  controller AWS calls / wall time   {ctl_rate:>8.1} calls/s  ({conv_calls} calls in {:.1} s)", wall.as_secs_f64());
    println!(
        "  as a fraction of the raw rate      {:>8.1} %  (empty account)   {:.1} %  ({n} LBs)",
        100.0 * ctl_rate / raw_before.rate(),
        100.0 * ctl_rate / raw_after.rate()
    );
    println!();

    let ops_per_ingress: BTreeMap<String, f64> =
        by_operation(&calls_converge).into_iter().map(|(op, v)| (op, (v as f64 / n as f64 * 100.0).round() / 100.0)).collect();
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    println!(
        "{}",
        json!({
            "bench": "alb",
            "ingresses": n,
            "converged": true,
            "wall_seconds": round2(wall.as_secs_f64()),
            "create_seconds": round2(t_created.as_secs_f64()),
            "hostname_p50_seconds": round2(percentile(&times, 0.5)),
            "hostname_p90_seconds": round2(percentile(&times, 0.9)),
            "reconciles": reconciles_converge,
            "aws_calls_total": total(&calls_converge),
            "aws_calls_per_ingress": round2(per_ingress),
            "aws_calls_per_ingress_by_operation": ops_per_ingress,
            "resync_reconciles": reconciles_resync,
            "resync_aws_calls": total(&calls_resync),
            "drift_round_aws_calls_per_ingress": round2(total(&calls_drift) as f64 / n as f64),
            "drift_round_writes": drift_writes,
            "peak_rss_mib": round2(hwm_kib as f64 / 1024.0),
            "cpu_seconds": round2(cpu_total),
            "localstack_raw_calls_per_second": round2(raw_before.rate()),
            "localstack_raw_calls_per_second_loaded": round2(raw_after.rate()),
            "controller_calls_per_second": round2(ctl_rate),
            "fraction_of_raw_rate": (ctl_rate / raw_before.rate() * 1000.0).round() / 1000.0,
            "log_warn_lines": warns,
            "log_error_lines": errors,
        })
    );
    drop(bed);
    i32::from(!resynced)
}
