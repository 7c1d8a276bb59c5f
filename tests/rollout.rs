//! A Deployment rolled out behind the ALB (`kubectl rollout restart`), watched from outside
//! the way a user would judge it: every 100 ms the target group (DescribeTargetHealth) and
//! the pods, side by side.
//!
//! The Deployment has 4 replicas, `maxSurge: 1, maxUnavailable: 0`, and pods that drain for
//! 3 s after they are told to stop (KWOK's pod-delete delay, as a preStop sleep would) inside
//! a 10 s grace period. With the readiness-gate webhook, a new pod counts as Ready only once
//! its target is healthy, so the Deployment controller removes an old pod only when its
//! replacement is serving: the ALB never has fewer than 4 Ready pods behind it. Without
//! gates the pod is Ready (and an old one removed) before the ALB has it.
//!
//! The emulator reports a target `healthy` the moment it is registered (no `initial` state,
//! no health checks) and drops a deregistered target at once (no `draining`): so on the bed
//! a gate turns True as soon as the target is registered, and the dip without gates lasts
//! only as long as the controller takes to register the new pod. On AWS a new target is
//! `initial` for the health-check interval times the healthy threshold (LBC's defaults:
//! 15 s × 2) and takes no traffic meanwhile, so the same rollout without gates can leave
//! the target group with no healthy target at all.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use support::gates::GateWebhook;
use support::{Bed, eventually, pod_ip, pod_ready};

const REPLICAS: usize = 4;

const SERVICE_AND_INGRESS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations: {alb.ingress.kubernetes.io/target-type: ip}
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {number: 80}}}
"#;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      # Drains for 3 s after SIGTERM (KWOK deletes the pod then), well inside its grace.
      annotations: {pod-delete.stage.kwok.x-k8s.io/delay: "3000"}
    spec:
      terminationGracePeriodSeconds: 10
      containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
"#;

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A pod as one sample saw it.
#[derive(Clone, Debug)]
struct PodSeen {
    name: String,
    ip: Option<String>,
    ready: bool,
    /// Its grace period's end (deletionTimestamp), once it is terminating.
    grace_end: Option<f64>,
}

impl PodSeen {
    fn of(pod: &Pod) -> PodSeen {
        PodSeen {
            name: pod.metadata.name.clone().unwrap_or_default(),
            ip: pod_ip(pod),
            ready: pod_ready(pod),
            grace_end: pod.metadata.deletion_timestamp.as_ref().map(|t| t.0.as_millisecond() as f64 / 1000.0),
        }
    }

    fn serving(&self) -> bool {
        self.ready && self.grace_end.is_none()
    }
}

/// The pods, then the target group, then the pods again: a target is judged against both
/// lists, so a pod changing between two reads is never taken for a wrong target.
struct Sample {
    at: f64,
    before: Vec<PodSeen>,
    /// Target IP → the health state the API reports.
    targets: BTreeMap<String, String>,
    after: Vec<PodSeen>,
}

impl Sample {
    /// Targets whose pod is Ready and not terminating in the list read after the target
    /// group (so a pod that began terminating meanwhile does not count).
    fn capacity(&self) -> usize {
        self.targets.keys().filter(|ip| self.after.iter().any(|p| p.ip.as_deref() == Some(ip.as_str()) && p.serving())).count()
    }

    /// One line: each target with its pod's state, then the pods without a target.
    fn describe(&self) -> String {
        let state = |p: &PodSeen| match (p.ready, p.grace_end.is_some()) {
            (_, true) => "terminating",
            (true, false) => "ready",
            (false, false) => "not-ready",
        };
        let mut parts: Vec<String> = self
            .targets
            .keys()
            .map(|ip| match self.after.iter().find(|p| p.ip.as_deref() == Some(ip.as_str())) {
                Some(p) => format!("{ip}={}:{}", p.name, state(p)),
                None => format!("{ip}=gone"),
            })
            .collect();
        let unregistered = self.after.iter().filter(|p| p.ip.as_ref().is_none_or(|ip| !self.targets.contains_key(ip)));
        parts.extend(unregistered.map(|p| format!("unregistered {}:{}", p.name, state(p))));
        format!("{:.3} capacity {}: {}", self.at, self.capacity(), parts.join(" "))
    }

    /// Targets that are no pod at all (not in either list: the pod was gone before the
    /// target group was read).
    fn gone_targets(&self) -> Vec<String> {
        let known = |ip: &String| self.before.iter().chain(&self.after).any(|p| p.ip.as_ref() == Some(ip));
        self.targets.keys().filter(|ip| !known(ip)).cloned().collect()
    }

    fn pod(&self, name: &str) -> Option<&PodSeen> {
        self.after.iter().find(|p| p.name == name)
    }
}

/// Samples every 100 ms until `stop` is set.
async fn sample(
    pods: Api<Pod>,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    tg_arn: String,
    stop: Arc<AtomicBool>,
    taken: Arc<AtomicUsize>,
) -> Vec<Sample> {
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let list = ListParams::default().labels("app=web");
    let mut samples = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        ticks.tick().await;
        let before = pods.list(&list).await.unwrap().items.iter().map(PodSeen::of).collect();
        let health = elbv2.describe_target_health().target_group_arn(&tg_arn).send().await.unwrap();
        let at = unix_now();
        let targets = health
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let ip = d.target()?.id()?.to_string();
                let state = d.target_health().and_then(|h| h.state()).map(|s| s.as_str().to_string()).unwrap_or_default();
                Some((ip, state))
            })
            .collect();
        let after = pods.list(&list).await.unwrap().items.iter().map(PodSeen::of).collect();
        samples.push(Sample { at, before, targets, after });
        taken.fetch_add(1, Ordering::SeqCst);
    }
    samples
}

/// What the samples of one rollout show.
#[derive(Debug)]
struct Rollout {
    samples: usize,
    min_capacity: usize,
    /// The samples with the least capacity (the first few).
    worst: Vec<String>,
    /// Seconds (summed over the samples' intervals) with fewer than REPLICAS serving targets.
    seconds_below: f64,
    /// (sample time, IP) of every target that was no pod.
    gone_targets: Vec<(f64, String)>,
    /// Per old pod: seconds from its first terminating sample to its first deregistered
    /// one, and whether that was before its grace period ended.
    deregistrations: Vec<(String, Option<f64>, bool)>,
    /// Per new pod: seconds from its target registered to the pod Ready (negative: the pod
    /// was Ready before the load balancer had it).
    registered_to_ready: Vec<(String, Option<f64>)>,
    states: BTreeSet<String>,
}

fn analyse(samples: &[Sample], old: &BTreeSet<String>) -> Rollout {
    let mut r = Rollout {
        samples: samples.len(),
        min_capacity: usize::MAX,
        worst: Vec::new(),
        seconds_below: 0.0,
        gone_targets: Vec::new(),
        deregistrations: Vec::new(),
        registered_to_ready: Vec::new(),
        states: BTreeSet::new(),
    };
    for (i, s) in samples.iter().enumerate() {
        let capacity = s.capacity();
        r.min_capacity = r.min_capacity.min(capacity);
        if capacity < REPLICAS
            && let Some(next) = samples.get(i + 1)
        {
            r.seconds_below += next.at - s.at;
        }
        r.gone_targets.extend(s.gone_targets().into_iter().map(|ip| (s.at, ip)));
        r.states.extend(s.targets.values().cloned());
    }
    let worst = samples.iter().filter(|s| s.capacity() == r.min_capacity);
    r.worst = worst.take(3).map(Sample::describe).collect();
    for name in old {
        // The first sample that saw it terminating, and its address then.
        let Some((start, seen)) =
            samples.iter().enumerate().find_map(|(i, s)| s.pod(name).filter(|p| p.grace_end.is_some()).map(|p| (i, p)))
        else {
            r.deregistrations.push((name.clone(), None, false));
            continue;
        };
        let (ip, grace_end, seen_at) = (seen.ip.clone().unwrap_or_default(), seen.grace_end.unwrap(), samples[start].at);
        let gone = samples[start..].iter().find(|s| !s.targets.contains_key(&ip)).map(|s| s.at);
        let deregistered = gone.map(|at| at - seen_at);
        r.deregistrations.push((name.clone(), deregistered, gone.is_some_and(|at| at < grace_end)));
    }
    let new: BTreeSet<&String> = samples.iter().flat_map(|s| &s.after).map(|p| &p.name).filter(|n| !old.contains(*n)).collect();
    for name in new {
        let ready = samples.iter().find(|s| s.pod(name).is_some_and(PodSeen::serving)).map(|s| s.at);
        let ip = samples.iter().find_map(|s| s.pod(name).and_then(|p| p.ip.clone()));
        let registered = ip.and_then(|ip| samples.iter().find(|s| s.targets.contains_key(&ip)).map(|s| s.at));
        let lag = match (registered, ready) {
            (Some(reg), Some(ready)) => Some(ready - reg),
            _ => None,
        };
        r.registered_to_ready.push((name.to_string(), lag));
    }
    r
}

/// Starts a bed (with the gate webhook or without), the Service, Ingress and Deployment,
/// and waits until the target group holds the 4 Ready pods. Returns the target group.
async fn setup(bed: &Bed, webhook: Option<&GateWebhook>) -> String {
    bed.apply(SERVICE_AND_INGRESS).await;
    let dns = bed.wait_hostname("shop").await;
    let lb = bed.load_balancer_by_dns(&dns).await;
    let listener = bed.listeners(lb.load_balancer_arn().unwrap()).await.remove(0);
    let tg_arn = listener.default_actions()[0].target_group_arn().unwrap().to_string();
    if let Some(webhook) = webhook {
        webhook.install(bed).await;
        webhook.wait_serving(bed, serde_json::json!({"app": "web"})).await;
    }
    bed.apply(DEPLOYMENT).await;
    eventually(&format!("the 4 pods are Ready and registered (log: {})", bed.log.display()), Duration::from_secs(90), || async {
        let ips = bed.ready_pod_ips("app=web").await;
        let targets: BTreeSet<String> = bed.targets(&tg_arn).await.into_iter().map(|(ip, _)| ip).collect();
        (ips.len() == REPLICAS && targets == ips).then_some(())
    })
    .await;
    tg_arn
}

/// `kubectl rollout restart deployment/web`, sampled until every old pod is gone and the
/// target group holds exactly the new pods.
async fn restart_and_sample(bed: &Bed, tg_arn: &str) -> Rollout {
    let pods = bed.api::<Pod>();
    let old: BTreeSet<String> =
        pods.list(&ListParams::default().labels("app=web")).await.unwrap().items.into_iter().filter_map(|p| p.metadata.name).collect();
    assert_eq!(old.len(), REPLICAS);
    if let Some(p) = pods.list(&ListParams::default().labels("app=web")).await.unwrap().items.first() {
        let gates = p.spec.as_ref().and_then(|s| s.readiness_gates.clone()).unwrap_or_default();
        eprintln!("[{}] readiness gates of the pods: {:?}", bed.ns, gates.iter().map(|g| &g.condition_type).collect::<Vec<_>>());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(AtomicUsize::new(0));
    let sampler = tokio::spawn(sample(pods.clone(), bed.elbv2.clone(), tg_arn.to_string(), stop.clone(), taken.clone()));
    // A few samples of the steady state first, and of the state after the rollout.
    let samples_beyond = |n: usize| {
        let taken = taken.clone();
        async move {
            let want = taken.load(Ordering::SeqCst) + n;
            eventually(&format!("the sampler takes {n} more samples"), Duration::from_secs(10), || async {
                (taken.load(Ordering::SeqCst) >= want).then_some(())
            })
            .await
        }
    };
    samples_beyond(3).await;
    bed.rollout_restart("web").await;
    let started = std::time::Instant::now();

    eventually(&format!("the rollout completes (log: {})", bed.log.display()), Duration::from_secs(120), || async {
        let now: Vec<Pod> = pods.list(&ListParams::default().labels("app=web")).await.ok()?.items;
        let all_new = now.iter().all(|p| !old.contains(p.metadata.name.as_deref().unwrap_or_default()));
        let ips: BTreeSet<String> = now.iter().filter(|p| pod_ready(p)).filter_map(pod_ip).collect();
        let targets: BTreeSet<String> = bed.targets(tg_arn).await.into_iter().map(|(ip, _)| ip).collect();
        (all_new && now.len() == REPLICAS && ips.len() == REPLICAS && targets == ips).then_some(())
    })
    .await;
    let took = started.elapsed();
    samples_beyond(3).await;
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.await.unwrap();
    let rollout = analyse(&samples, &old);
    eprintln!("[{}] rollout took {took:.1?}; {rollout:#?}", bed.ns);
    rollout
}

fn assert_terminating_pods_deregistered_in_time(r: &Rollout) {
    assert_eq!(r.deregistrations.len(), REPLICAS);
    for (pod, took, in_grace) in &r.deregistrations {
        assert!(took.is_some() && *in_grace, "{pod} was not deregistered before its grace period ended: {r:#?}");
        // The pod drains for 3 s; its target must leave well before that.
        assert!(took.unwrap() < 2.0, "{pod} was deregistered {took:?} s after it began terminating: {r:#?}");
    }
    assert!(r.gone_targets.is_empty(), "targets of pods that were already gone: {r:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_with_readiness_gates_never_has_fewer_than_its_replicas_behind_the_alb() {
    let webhook = GateWebhook::new();
    let args = webhook.args();
    let bed = Bed::start_with_args("rollout-gates", &args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let tg_arn = setup(&bed, Some(&webhook)).await;
    let r = restart_and_sample(&bed, &tg_arn).await;

    assert!(r.samples >= 20, "too few samples to judge the rollout: {r:#?}");
    assert!(r.min_capacity >= REPLICAS, "fewer than {REPLICAS} Ready pods behind the ALB during the rollout: {r:#?}");
    assert_terminating_pods_deregistered_in_time(&r);
    // The gate is what orders it: each new pod became Ready only after its target was there.
    assert_eq!(r.registered_to_ready.len(), REPLICAS, "{r:#?}");
    for (pod, lag) in &r.registered_to_ready {
        assert!(lag.is_some_and(|l| l >= 0.0), "{pod} was Ready before its target was registered: {r:#?}");
    }
    webhook.uninstall(&bed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_without_readiness_gates_has_pods_ready_before_the_alb_has_them() {
    let bed = Bed::start("rollout-nogates").await;
    let tg_arn = setup(&bed, None).await;
    let r = restart_and_sample(&bed, &tg_arn).await;

    assert!(r.samples >= 10, "too few samples to judge the rollout: {r:#?}");
    // Deregistration does not depend on the gates.
    assert_terminating_pods_deregistered_in_time(&r);
    assert_eq!(r.registered_to_ready.len(), REPLICAS, "{r:#?}");
    // Without a gate a new pod is Ready first and registered after (the EndpointSlice, then
    // the controller's debounce and call): the Deployment controller may already be removing
    // an old pod. Whether the ALB then runs short on the bed is a race between the two
    // (seen down to 1 of 4 here; not in a release-build bench of 3 × 4); on AWS it is not a
    // race, since a new target takes no traffic until its health checks pass.
    let early: Vec<_> = r.registered_to_ready.iter().filter(|(_, lag)| lag.is_some_and(|l| l < 0.0)).collect();
    assert!(!early.is_empty(), "no new pod was seen Ready before its target was registered: {r:#?}");
    eprintln!("[{}] without gates: least capacity {} of {REPLICAS}, {:.2} s below {REPLICAS}", bed.ns, r.min_capacity, r.seconds_below);
}
