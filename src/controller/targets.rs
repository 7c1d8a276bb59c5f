//! The targets fast path. An EndpointSlice, gated-pod or Node change reaches
//! Register/DeregisterTargets without discovery, model build or sync of the whole group:
//! each built group says what its target groups follow; a change marks the groups that
//! follow it; once a marked group has been quiet for the debounce (a burst keeps it
//! waiting, three debounces at most) it recomputes only the target groups the change
//! touches and diffs them against what is registered. A group not converged since the
//! start is left to its full reconcile, which reads AWS for that group only when it runs.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Context, Error};
use crate::model::{Dependency, GroupId};
use crate::sync;

struct Marked {
    first: Instant,
    last: Instant,
    changed: BTreeSet<Dependency>,
}

impl Marked {
    /// Due once quiet for `debounce`, or at the latest three debounces after the first
    /// change: a burst is one update, and a steady stream still gets through.
    fn due(&self, debounce: Duration) -> Instant {
        (self.last + debounce).min(self.first + debounce * 3)
    }
}

/// Groups waiting for their targets to be brought up to date.
#[derive(Default)]
pub struct TargetQueue {
    /// What each group's target groups follow, as last built.
    follows: Mutex<HashMap<GroupId, BTreeSet<Dependency>>>,
    /// Marked groups: what changed, since when.
    dirty: Mutex<HashMap<GroupId, Marked>>,
    wake: Notify,
}

impl TargetQueue {
    pub fn follow(&self, group: &GroupId, dependencies: BTreeSet<Dependency>) {
        lock(&self.follows).insert(group.clone(), dependencies);
    }

    pub fn forget(&self, group: &GroupId) {
        lock(&self.follows).remove(group);
        lock(&self.dirty).remove(group);
    }

    /// Marks every group that follows `dependency`.
    pub fn changed(&self, dependency: Dependency) {
        let groups: Vec<GroupId> = lock(&self.follows).iter().filter(|(_, d)| d.contains(&dependency)).map(|(g, _)| g.clone()).collect();
        if groups.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut dirty = lock(&self.dirty);
        for group in groups {
            let marked = dirty.entry(group).or_insert_with(|| Marked { first: now, last: now, changed: BTreeSet::new() });
            marked.last = now;
            marked.changed.insert(dependency.clone());
        }
        drop(dirty);
        self.wake.notify_one();
    }

    pub fn depth(&self) -> usize {
        lock(&self.dirty).len()
    }

    /// The groups that are due, and when the next one will be.
    fn take_due(&self, debounce: Duration) -> (Vec<(GroupId, BTreeSet<Dependency>)>, Option<Instant>) {
        let now = Instant::now();
        let mut dirty = lock(&self.dirty);
        let due: Vec<GroupId> = dirty.iter().filter(|(_, m)| m.due(debounce) <= now).map(|(g, _)| g.clone()).collect();
        let taken = due.into_iter().filter_map(|g| dirty.remove(&g).map(|m| (g, m.changed))).collect();
        let next = dirty.values().map(|m| m.due(debounce)).min();
        (taken, next)
    }
}

/// The maps hold plain data and no code panics while holding them: a poisoned lock
/// still holds consistent data.
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Works the queue until `stop` turns true, then lets the groups in flight finish.
pub async fn run(ctx: Arc<Context>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(usize::from(ctx.cfg.max_concurrent_target_updates.max(1))));
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let (due, next) = ctx.targets.take_due(ctx.cfg.reconcile_debounce);
        ctx.metrics.queue_depth("target_groups", ctx.targets.depth());
        for (group, dependencies) in due {
            let (ctx, limit) = (ctx.clone(), limit.clone());
            running.spawn(async move {
                let Ok(_permit) = limit.acquire().await else { return };
                let result = update(&ctx, &group, &dependencies).await;
                ctx.metrics.target_update(if result.is_ok() { "success" } else { "error" });
                if let Err(e) = result {
                    tracing::warn!(%group, error = %crate::telemetry::Excerpt(&e), "targets: the group is reconciled in full");
                    ctx.converged.lock().await.remove(&group);
                    for ing in super::reconcile::members_of(&ctx, &group) {
                        let _ = ctx.resync.send(ObjectRef::from_obj(ing.as_ref()));
                    }
                }
            });
        }
        let due_next = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctx.targets.wake.notified() => {}
            _ = due_next => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    while running.join_next().await.is_some() {}
}

/// Brings the target groups of `group` that follow `changed` to their current targets.
async fn update(ctx: &Context, group: &GroupId, changed: &BTreeSet<Dependency>) -> Result<(), Error> {
    super::reconcile::wait_synced(ctx).await?;
    let lock = ctx.group_lock(group).await;
    let _guard = lock.lock().await;
    // Not converged (yet): its full reconcile registers the targets.
    let Some(mut converged) = ctx.converged.lock().await.remove(group) else { return Ok(()) };
    let gated_pods = super::gates::waiting_pods(ctx);
    let nodes = ctx.nodes.state();
    let touched: Vec<_> =
        converged.target_groups.iter().filter(|tg| tg.source.dependencies().iter().any(|d| changed.contains(d))).collect();
    let slices = super::slices_of(ctx, &touched.iter().filter_map(|tg| tg.source.service().cloned()).collect());
    let mut result = Ok(());
    for tg in touched {
        let of_service = tg.source.service().and_then(|s| slices.get(s)).map(Vec::as_slice).unwrap_or_default();
        let Some(desired) = tg.source.targets(of_service.iter().map(Arc::as_ref), &nodes, &gated_pods) else { continue };
        let Some(actual) = converged.actual.target_groups.iter_mut().find(|a| a.arn == tg.arn) else { continue };
        if let Err(e) = sync::targets::sync_one(&ctx.aws, actual, &desired).await {
            result = Err(e.into());
            break;
        }
    }
    if result.is_ok() {
        // Pods on other nodes, or new ports: the targets' security groups follow.
        result = super::backend::open_targets(ctx, group, &converged).await;
    }
    // What succeeded is recorded in `actual`, so the entry stays right even on an error.
    ctx.converged.lock().await.insert(group.clone(), converged);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjKey;

    fn svc(name: &str) -> Dependency {
        Dependency::Service(ObjKey { namespace: "ns".into(), name: name.into() })
    }

    fn group(name: &str) -> GroupId {
        GroupId::Explicit(name.into())
    }

    #[test]
    fn a_change_marks_only_the_groups_that_follow_it() {
        let q = TargetQueue::default();
        q.follow(&group("a"), BTreeSet::from([svc("web")]));
        q.follow(&group("b"), BTreeSet::from([svc("api"), Dependency::Nodes]));
        q.changed(svc("web"));
        q.changed(Dependency::Nodes);
        q.changed(svc("other"));
        let (mut due, next) = q.take_due(Duration::ZERO);
        due.sort();
        assert_eq!(due, vec![(group("a"), BTreeSet::from([svc("web")])), (group("b"), BTreeSet::from([Dependency::Nodes]))]);
        assert_eq!((next, q.depth()), (None, 0));
    }

    #[test]
    fn a_burst_is_one_update_after_the_debounce() {
        let q = TargetQueue::default();
        q.follow(&group("a"), BTreeSet::from([svc("web"), svc("api")]));
        for _ in 0..100 {
            q.changed(svc("web"));
        }
        q.changed(svc("api"));
        let (due, next) = q.take_due(Duration::from_secs(60));
        assert!(due.is_empty() && next.is_some(), "not due before the debounce");
        assert_eq!(q.depth(), 1, "a hundred changes, one entry");
        let (due, _) = q.take_due(Duration::ZERO);
        assert_eq!(due, vec![(group("a"), BTreeSet::from([svc("api"), svc("web")]))]);
    }

    #[test]
    fn a_steady_stream_is_due_three_debounces_after_its_first_change() {
        let start = Instant::now();
        let debounce = Duration::from_millis(100);
        let quiet = Marked { first: start, last: start + Duration::from_millis(50), changed: BTreeSet::new() };
        assert_eq!(quiet.due(debounce), start + Duration::from_millis(150), "quiet for a debounce after the last change");
        let busy = Marked { first: start, last: start + Duration::from_millis(290), changed: BTreeSet::new() };
        assert_eq!(busy.due(debounce), start + Duration::from_millis(300), "capped");
    }

    #[test]
    fn a_forgotten_group_is_not_marked() {
        let q = TargetQueue::default();
        q.follow(&group("a"), BTreeSet::from([svc("web")]));
        q.forget(&group("a"));
        q.changed(svc("web"));
        assert_eq!(q.depth(), 0);
    }
}
