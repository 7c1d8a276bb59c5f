//! The integration bed as seen from a test: a real Kubernetes control plane (KUBECONFIG:
//! kube-apiserver, kube-controller-manager, kube-scheduler, and KWOK as the kubelet) and
//! LocalStack (AWS_ENDPOINT_URL), both started by `make test`. Each test gets its own
//! namespace, cluster name and AWS account (LocalStack maps each access key id to an
//! account), its own worker nodes (EC2 instances of that account, [`NODES`] of them, which
//! its namespace's pods are scheduled onto), and its own controller process, so tests run in
//! parallel. A test ends by deleting its namespace, as a user would (see `Drop for Bed`).

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod faults;
pub mod incluster;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use aws_sdk_elasticloadbalancingv2::types::{Listener, LoadBalancer, Rule, TargetGroup};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const TAG_CLUSTER: &str = "elbv2.k8s.aws/cluster";
pub const TAG_STACK: &str = "ingress.k8s.aws/stack";

/// Worker nodes every bed has (EC2 instances in the first private subnets).
pub const NODES: usize = 2;

/// The Deployment `web`: one pod `app=web` listening on 8080.
macro_rules! web_deployment {
    () => {
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]
"#
    };
}

/// The Deployment of [`WEB`] alone, for a test that brings its own Service `web`.
pub const WEB_DEPLOYMENT: &str = web_deployment!();

/// The Service `web` (port 80 → 8080) in front of a Deployment of one pod (`app=web`); the
/// EndpointSlice controller publishes its endpoint once KWOK has started it.
pub const WEB: &str = concat!(
    r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---"#,
    web_deployment!()
);

/// A controller process of a bed.
pub struct Replica {
    child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl Replica {
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        bin: &std::path::Path,
        ns: &str,
        cluster: &str,
        vpc_id: &str,
        account: &str,
        extra: &[String],
        name: &str,
        kubeconfig: &std::path::Path,
        endpoint: Option<&str>,
    ) -> Replica {
        let metrics_port = free_port();
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(bin);
        if let Some(endpoint) = endpoint {
            command.env("AWS_ENDPOINT_URL", endpoint);
        }
        let child = command
            // Tests use pod IPs unless they say otherwise (LBC's default is instance).
            .args(["run", "--cluster-name", cluster, "--aws-vpc-id", vpc_id, "--watch-namespace", ns, "--default-target-type", "ip"])
            .args(["--metrics-bind-address", &format!("127.0.0.1:{metrics_port}")])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("AWS_ACCESS_KEY_ID", account)
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "info,alb_controller=debug")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start alb-controller");
        Replica { child, metrics_port, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the process to stop, as Kubernetes does (SIGTERM).
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the process at once (no clean shutdown, no lease release).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh AWS account on the bed's LocalStack (LocalStack maps each 12-digit access key id
/// to its own account), seeded by localstack/seed.sh, with SDK clients for it.
pub struct Account {
    pub id: String,
    /// What localstack/seed.py made: vpc_id, public_subnets, private_subnets, certificate_arn.
    pub seed: serde_json::Value,
    pub elbv2: elbv2::Client,
    pub ec2: aws_sdk_ec2::Client,
}

impl Account {
    /// A new random account, seeded for `cluster`.
    pub async fn seeded(cluster: &str) -> Account {
        Self::seeded_with_nodes(cluster, 0).await
    }

    /// As [`Account::seeded`], with `nodes` worker nodes (EC2 instances whose interfaces hold
    /// a block of pod addresses each; their Node objects are [`Account::node_objects`]).
    pub async fn seeded_with_nodes(cluster: &str, nodes: usize) -> Account {
        require_env("AWS_ENDPOINT_URL");
        let id = format!("{}", rand::random_range(100_000_000_000u64..999_999_999_999));
        let seed = run_seed(&id, cluster, nodes);
        let creds = elbv2::config::Credentials::new(&id, "test", None, None, "test");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(creds)
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        Account { id, seed, elbv2: elbv2::Client::new(&sdk), ec2: aws_sdk_ec2::Client::new(&sdk) }
    }

    /// The Node objects of this account's worker nodes (hack/nodes.py), labelled
    /// `alb-bed/pool=<pool>`.
    pub fn node_objects(&self, pool: &str) -> Vec<Node> {
        use std::io::Write;
        let mut child = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/nodes.py"))
            .args(["--pool", pool])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run hack/nodes.py");
        child.stdin.take().unwrap().write_all(self.seed.to_string().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "hack/nodes.py failed");
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        serde_json::from_value(list["items"].clone()).unwrap()
    }
}

/// localstack/seed.sh for `cluster` in account `id` with `nodes` worker nodes in all (it
/// reuses what is there, so a second run only adds nodes); its JSON.
fn run_seed(id: &str, cluster: &str, nodes: usize) -> serde_json::Value {
    let seed = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/localstack/seed.sh"))
        .args(["--cluster", cluster, "--nodes", &nodes.to_string()])
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run localstack/seed.sh");
    assert!(seed.status.success(), "seed failed: {}", String::from_utf8_lossy(&seed.stderr));
    serde_json::from_slice(&seed.stdout).expect("seed prints JSON")
}

pub struct Bed {
    bin: PathBuf,
    /// The admin kubeconfig of the API server (for the cleanup in `Drop`).
    admin: PathBuf,
    /// This bed's worker nodes (Node names), cluster-scoped: deleted in `Drop`.
    pub nodes: Vec<String>,
    /// The controller authenticates as deploy/manifests.yaml's ServiceAccount, bound only
    /// to its ClusterRole: every test proves that RBAC is enough.
    kubeconfig: PathBuf,
    extra: Vec<String>,
    pub client: Client,
    pub elbv2: elbv2::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub ns: String,
    pub cluster: String,
    pub account: String,
    pub vpc_id: String,
    /// What localstack/seed.py made: vpc_id, public_subnets, private_subnets, certificate_arn.
    pub seed: serde_json::Value,
    metrics_port: u16,
    controller: Replica,
    pub log: PathBuf,
    /// The fault proxy between the controller and LocalStack ([`Bed::start_with_faults`]).
    faults: Option<faults::FaultProxy>,
}

fn require_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: integration tests run on the bed that `make test` starts"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Bed {
    /// Seeds a fresh AWS account, creates a namespace, and starts a controller watching it.
    pub async fn start(test: &str) -> Bed {
        Self::start_with_bin(test, std::path::Path::new(env!("CARGO_BIN_EXE_alb-controller"))).await
    }

    /// As [`Bed::start`], with the controller binary from `ALB_CONTROLLER_BIN` when set
    /// (e.g. a release build for the benchmark), else the one Cargo built for this target.
    pub async fn start_from_env(test: &str) -> Bed {
        let bin = std::env::var_os("ALB_CONTROLLER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_alb-controller")));
        Self::start_with_bin(test, &bin).await
    }

    /// As [`Bed::start_from_env`], with more controller flags.
    pub async fn start_from_env_with_args(test: &str, extra: &[&str]) -> Bed {
        let bin = std::env::var_os("ALB_CONTROLLER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_alb-controller")));
        Self::start_full(test, &bin, extra, false).await
    }

    /// As [`Bed::start`], running the controller binary at `bin`.
    pub async fn start_with_bin(test: &str, bin: &std::path::Path) -> Bed {
        Self::start_full(test, bin, &[], false).await
    }

    /// As [`Bed::start`], with more controller flags.
    pub async fn start_with_args(test: &str, extra: &[&str]) -> Bed {
        Self::start_full(test, std::path::Path::new(env!("CARGO_BIN_EXE_alb-controller")), extra, false).await
    }

    /// As [`Bed::start_with_args`], with the controller's AWS calls going through a fault
    /// proxy of this test's own ([`Bed::faults`]); it injects nothing until told to.
    pub async fn start_with_faults(test: &str, extra: &[&str]) -> Bed {
        Self::start_full(test, std::path::Path::new(env!("CARGO_BIN_EXE_alb-controller")), extra, true).await
    }

    /// As [`Bed::start_with_faults`], with the controller binary from `ALB_CONTROLLER_BIN`.
    pub async fn start_from_env_with_faults(test: &str, extra: &[&str]) -> Bed {
        let bin = std::env::var_os("ALB_CONTROLLER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_alb-controller")));
        Self::start_full(test, &bin, extra, true).await
    }

    /// The fault proxy of a bed started with faults.
    pub fn faults(&self) -> &faults::FaultProxy {
        self.faults.as_ref().expect("the bed was started with Bed::start_with_faults")
    }

    async fn start_full(test: &str, bin: &std::path::Path, extra: &[&str], with_faults: bool) -> Bed {
        let admin = PathBuf::from(require_env("KUBECONFIG"));
        Self::start_on_with(test, &admin, bin, extra, with_faults).await
    }

    /// As [`Bed::start_with_args`], on the Kubernetes API server that the admin
    /// kubeconfig at `admin` names (e.g. a test's private control plane) instead of the
    /// bed's; AWS is still the bed's LocalStack.
    pub async fn start_on(test: &str, admin: &std::path::Path, bin: &std::path::Path, extra: &[&str]) -> Bed {
        Self::start_on_with(test, admin, bin, extra, false).await
    }

    async fn start_on_with(test: &str, admin: &std::path::Path, bin: &std::path::Path, extra: &[&str], with_faults: bool) -> Bed {
        let localstack = require_env("AWS_ENDPOINT_URL");
        let faults = with_faults.then(|| faults::FaultProxy::start(&localstack));
        let suffix: u32 = rand::random_range(100_000..999_999);
        let ns = format!("{test}-{suffix}");
        let cluster = format!("c{suffix}");

        let account = Account::seeded_with_nodes(&cluster, NODES).await;
        let nodes = account.node_objects(&ns);
        let Account { id: account, seed: seeded, elbv2, ec2 } = account;
        let vpc_id = seeded["vpc_id"].as_str().unwrap().to_string();

        let admin_path = admin.to_path_buf();
        let admin = kube::config::Kubeconfig::read_from(admin).expect("read the admin kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(admin.clone(), &Default::default()).await.expect("admin kubeconfig");
        let client = Client::try_from(config).expect("kube client from the admin kubeconfig");
        // The namespace's pods go to this bed's nodes only (the PodNodeSelector admission
        // plugin), as a cluster of its own would place them.
        let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns,
            "annotations": {"scheduler.alpha.kubernetes.io/node-selector": format!("alb-bed/pool={ns}")}}}))
        .unwrap();
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await.unwrap();
        let mut node_names = Vec::new();
        for node in &nodes {
            Api::<Node>::all(client.clone()).create(&PostParams::default(), node).await.expect("create a Node");
            node_names.push(node.metadata.name.clone().unwrap());
        }
        ensure_ingress_class(&client).await;
        ensure_crds(&client).await;
        let kubeconfig = service_account_kubeconfig(&client, &admin, &ns).await;

        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let endpoint = faults.as_ref().map(|f| f.url());
        let replica = Replica::spawn(bin, &ns, &cluster, &vpc_id, &account, &extra, &ns, &kubeconfig, endpoint.as_deref());
        eprintln!("[{ns}] controller log: {}", replica.log.display());
        let (metrics_port, log) = (replica.metrics_port, replica.log.clone());
        let controller = replica;
        Bed {
            bin: bin.to_path_buf(),
            admin: admin_path,
            nodes: node_names,
            kubeconfig,
            extra,
            client,
            elbv2,
            ec2,
            ns,
            cluster,
            account,
            vpc_id,
            seed: seeded,
            metrics_port,
            controller,
            log,
            faults,
        }
    }

    /// Grows the bed to `total` worker nodes (more EC2 instances of its account, and their
    /// Node objects in its pool), e.g. for more pods than two nodes hold.
    pub async fn grow_nodes(&mut self, total: usize) {
        let seed = run_seed(&self.account, &self.cluster, total);
        let account = Account { id: self.account.clone(), seed, elbv2: self.elbv2.clone(), ec2: self.ec2.clone() };
        for node in account.node_objects(&self.ns) {
            let name = node.metadata.name.clone().unwrap();
            if !self.nodes.contains(&name) {
                Api::<Node>::all(self.client.clone()).create(&PostParams::default(), &node).await.expect("create a Node");
                self.nodes.push(name);
            }
        }
        self.seed["nodes"] = account.seed["nodes"].clone();
    }

    /// Another controller process, same flags, on the same namespace and AWS account.
    pub fn spawn_replica(&self, name: &str) -> Replica {
        Replica::spawn(
            &self.bin,
            &self.ns,
            &self.cluster,
            &self.vpc_id,
            &self.account,
            &self.extra,
            &format!("{}-{name}", self.ns),
            &self.kubeconfig,
            self.faults.as_ref().map(|f| f.url()).as_deref(),
        )
    }

    /// The bed's own controller process.
    pub fn controller(&mut self) -> &mut Replica {
        &mut self.controller
    }

    /// Kills the bed's own controller at once.
    pub fn kill_controller(&mut self) {
        self.controller.kill();
    }

    /// Starts the bed's controller again (after [`Bed::kill_controller`]), with a new log.
    pub async fn restart_controller(&mut self, name: &str) {
        self.controller.kill();
        self.controller = self.spawn_replica(name);
        self.metrics_port = self.controller.metrics_port;
        self.log = self.controller.log.clone();
        if let Err(e) = self.wait_metrics_up().await {
            panic!("{e}");
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates every object of a multi-document YAML manifest in the test namespace.
    pub async fn apply(&self, yaml: &str) {
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let mut v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            v["metadata"]["namespace"] = self.ns.clone().into();
            let kind = v["kind"].as_str().unwrap().to_string();
            let pp = PostParams::default();
            match kind.as_str() {
                "Ingress" => drop(self.api::<Ingress>().create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap()),
                "Service" => {
                    drop(self.api::<k8s_openapi::api::core::v1::Service>().create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap())
                }
                "Deployment" => drop(
                    self.api::<k8s_openapi::api::apps::v1::Deployment>().create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap(),
                ),
                "Pod" => drop(self.api::<Pod>().create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap()),
                "EndpointSlice" => drop(
                    self.api::<k8s_openapi::api::discovery::v1::EndpointSlice>()
                        .create(&pp, &serde_json::from_value(v).unwrap())
                        .await
                        .unwrap(),
                ),
                other => panic!("apply: unsupported kind {other}"),
            }
        }
    }

    /// IPs of the Ready pods matching the label `selector`.
    pub async fn ready_pod_ips(&self, selector: &str) -> BTreeSet<String> {
        let pods = self.api::<Pod>().list(&ListParams::default().labels(selector)).await.unwrap();
        pods.items.iter().filter(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p)).filter_map(pod_ip).collect()
    }

    /// Waits until `n` pods matching `selector` are Ready; returns their IPs.
    pub async fn wait_ready_pods(&self, selector: &str, n: usize) -> BTreeSet<String> {
        eventually(&format!("{n} Ready pods {selector}"), Duration::from_secs(60), || async {
            let ips = self.ready_pod_ips(selector).await;
            (ips.len() == n).then_some(ips)
        })
        .await
    }

    /// The (IP, port) targets that the Ready pods matching `selector` make on `port`.
    pub async fn wait_pod_targets(&self, selector: &str, n: usize, port: i32) -> BTreeSet<(String, i32)> {
        self.wait_ready_pods(selector, n).await.into_iter().map(|ip| (ip, port)).collect()
    }

    pub async fn hostname(&self, ingress: &str) -> Option<String> {
        let ing = self.api::<Ingress>().get_opt(ingress).await.unwrap()?;
        ing.status?.load_balancer?.ingress?.first()?.hostname.clone()
    }

    pub async fn wait_hostname(&self, ingress: &str) -> String {
        eventually(&format!("{ingress} gets a hostname (log: {})", self.log.display()), Duration::from_secs(90), || self.hostname(ingress))
            .await
    }

    /// Warning Event messages on an Ingress.
    pub async fn warnings(&self, ingress: &str) -> Vec<String> {
        let lp = ListParams::default().fields(&format!("involvedObject.name={ingress}"));
        let events = self.api::<Event>().list(&lp).await.unwrap();
        events.items.into_iter().filter(|e| e.type_.as_deref() == Some("Warning")).filter_map(|e| e.message).collect()
    }

    pub async fn wait_warning(&self, ingress: &str, needle: &str) -> String {
        eventually(&format!("a Warning Event on {ingress} containing {needle:?}"), Duration::from_secs(60), || async {
            self.warnings(ingress).await.into_iter().find(|m| m.contains(needle))
        })
        .await
    }

    // ---- AWS, read back through the API ----

    pub async fn load_balancers(&self) -> Vec<LoadBalancer> {
        self.elbv2.describe_load_balancers().send().await.unwrap().load_balancers.unwrap_or_default()
    }

    pub async fn load_balancer_by_dns(&self, dns: &str) -> LoadBalancer {
        self.load_balancers()
            .await
            .into_iter()
            .find(|lb| lb.dns_name() == Some(dns))
            .unwrap_or_else(|| panic!("no load balancer with DNS name {dns}"))
    }

    pub async fn tags(&self, arn: &str) -> BTreeMap<String, String> {
        let out = self.elbv2.describe_tags().resource_arns(arn).send().await.unwrap();
        out.tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect()
    }

    /// ARNs of load balancers and target groups tagged with this test's cluster and `stack`.
    pub async fn stack_arns(&self, stack: &str) -> Vec<String> {
        let mut arns: Vec<String> = self.load_balancers().await.iter().filter_map(|lb| lb.load_balancer_arn.clone()).collect();
        let tgs = self.elbv2.describe_target_groups().send().await.unwrap().target_groups.unwrap_or_default();
        arns.extend(tgs.iter().filter_map(|tg| tg.target_group_arn.clone()));
        let mut out = Vec::new();
        for arn in arns {
            let tags = self.tags(&arn).await;
            if tags.get(TAG_CLUSTER) == Some(&self.cluster) && tags.get(TAG_STACK).map(String::as_str) == Some(stack) {
                out.push(arn);
            }
        }
        out
    }

    pub async fn stack_security_groups(&self, stack: &str) -> Vec<String> {
        let f = |k: &str, v: &str| aws_sdk_ec2::types::Filter::builder().name(k).values(v).build();
        let out = self
            .ec2
            .describe_security_groups()
            .filters(f(&format!("tag:{TAG_CLUSTER}"), &self.cluster))
            .filters(f(&format!("tag:{TAG_STACK}"), stack))
            .send()
            .await
            .unwrap();
        out.security_groups().iter().filter_map(|g| g.group_id.clone()).collect()
    }

    pub async fn listeners(&self, lb_arn: &str) -> Vec<Listener> {
        self.elbv2.describe_listeners().load_balancer_arn(lb_arn).send().await.unwrap().listeners.unwrap_or_default()
    }

    /// Non-default rules in priority order.
    pub async fn rules(&self, listener_arn: &str) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self
            .elbv2
            .describe_rules()
            .listener_arn(listener_arn)
            .send()
            .await
            .unwrap()
            .rules
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !r.is_default().unwrap_or(false))
            .collect();
        rules.sort_by_key(|r| r.priority().unwrap_or_default().parse::<i32>().unwrap_or(i32::MAX));
        rules
    }

    /// Waits until the listener's rules have these path-pattern values, in priority order.
    pub async fn wait_paths(&self, listener: &str, want: &[&str]) {
        eventually(&format!("rules become {want:?} (log: {})", self.log.display()), Duration::from_secs(60), || async {
            (rule_paths(&self.rules(listener).await) == want).then_some(())
        })
        .await;
    }

    pub async fn target_group(&self, arn: &str) -> TargetGroup {
        self.elbv2.describe_target_groups().target_group_arns(arn).send().await.unwrap().target_groups.unwrap_or_default().remove(0)
    }

    pub async fn targets(&self, tg_arn: &str) -> BTreeSet<(String, i32)> {
        let out = self.elbv2.describe_target_health().target_group_arn(tg_arn).send().await.unwrap();
        out.target_health_descriptions()
            .iter()
            .filter_map(|d| d.target())
            .map(|t| (t.id().unwrap_or_default().to_string(), t.port().unwrap_or_default()))
            .collect()
    }

    // ---- the controller process ----

    /// The controller's process id (for /proc/<pid>/status).
    pub fn controller_pid(&self) -> u32 {
        self.controller.pid()
    }

    /// `Some(status)` once the controller process has exited.
    pub fn controller_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.controller.child.try_wait().ok().flatten()
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    // ---- the controller's own metrics ----

    pub async fn metrics(&self) -> String {
        scrape(self.metrics_port).await
    }

    /// `alb_controller_aws_api_calls_total` by operation, summed over outcomes.
    pub async fn aws_calls(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (labels, value) in samples(&self.metrics().await, "alb_controller_aws_api_calls_total") {
            *out.entry(labels.get("operation").cloned().unwrap_or_default()).or_default() += value as u64;
        }
        out
    }

    pub async fn reconciles(&self) -> u64 {
        samples(&self.metrics().await, "alb_controller_reconciles_total").iter().map(|(_, v)| *v as u64).sum()
    }

    /// Updates of target groups by the endpoint fast path.
    pub async fn target_updates(&self) -> u64 {
        samples(&self.metrics().await, "alb_controller_target_updates_total").iter().map(|(_, v)| *v as u64).sum()
    }

    /// (reconciles, fast-path target updates): moves whenever the controller works.
    async fn work_done(&self) -> (u64, u64) {
        let metrics = self.metrics().await;
        let sum = |name| samples(&metrics, name).iter().map(|(_, v)| *v as u64).sum::<u64>();
        (sum("alb_controller_reconciles_total"), sum("alb_controller_target_updates_total"))
    }

    /// Waits until the controller has not reconciled anything (nor updated targets) for
    /// 1.5 s; returns the reconcile count then.
    pub async fn wait_quiet(&self) -> u64 {
        match self.wait_quiet_for(Duration::from_millis(1500), Duration::from_secs(60)).await {
            Some(n) => n,
            None => panic!("the controller never went quiet (log: {})", self.log.display()),
        }
    }

    /// Waits until neither `reconciles_total` nor `target_updates_total` has moved for
    /// `quiet`; returns the reconcile count then, or `None` at the deadline.
    pub async fn wait_quiet_for(&self, quiet: Duration, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        let mut last = self.work_done().await;
        let mut since = Instant::now();
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.work_done().await;
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= quiet {
                return Some(now.0);
            }
        }
        None
    }

    /// Waits until the controller serves /metrics, or says why it never will.
    pub async fn wait_metrics_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.controller_exited() {
                return Err(format!("the controller exited at startup ({status}); log: {}", self.log.display()));
            }
            if Instant::now() > deadline {
                return Err(format!("the controller's metrics endpoint never came up; log: {}", self.log.display()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Bed {
    /// A test ends as a user would end: its namespace is deleted while the controller runs,
    /// so every Ingress in it goes through deletion (its AWS resources removed, its
    /// finalizer released) before the namespace can go. Skipped when the test failed or its
    /// controller is gone (the namespace then stays Terminating on this disposable bed).
    fn drop(&mut self) {
        record_aws_operations(self.metrics_port, &self.ns);
        if !std::thread::panicking() && self.controller.exited().is_none() {
            // The user's AWS works again by the time they clean up.
            if let Some(faults) = &self.faults {
                faults.clear();
            }
            let (admin, ns) = (self.admin.clone(), self.ns.clone());
            // Drop cannot await: a thread with a runtime of its own does the deletion.
            let done = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(delete_namespace(&admin, &ns, Duration::from_secs(90)))
            })
            .join();
            if let Ok(Err(e)) = done {
                eprintln!("[{}] {e} (log: {})", self.ns, self.log.display());
            }
        }
        self.controller.kill();
        let nodes = self.nodes.clone();
        if !nodes.is_empty() {
            let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
            let _ = Command::new(kubectl)
                .env("KUBECONFIG", &self.admin)
                .args(["delete", "nodes", "--wait=false", "--ignore-not-found"])
                .args(&nodes)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Deletes the namespace `ns` and waits until it is gone.
pub async fn delete_namespace(admin: &std::path::Path, ns: &str, timeout: Duration) -> Result<(), String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(admin).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.map_err(|e| e.to_string())?;
    let client = Client::try_from(config).map_err(|e| e.to_string())?;
    let api = Api::<Namespace>::all(client);
    match api.delete(ns, &Default::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(format!("deleting namespace {ns}: {e}")),
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match api.get_opt(ns).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    Err(format!("namespace {ns} was not gone {timeout:?} after its deletion"))
}

pub fn pod_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

pub fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status.as_ref()?.pod_ip.clone()
}

/// Writes the AWS operations a controller called (from its metrics) to
/// target/tmp/aws-operations/<name>, for tests/iam.rs to check against the IAM policy.
fn record_aws_operations(port: u16, name: &str) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let ops: BTreeSet<String> = samples(&text, "alb_controller_aws_api_calls_total")
        .into_iter()
        .filter_map(|(labels, _)| Some(format!("{}:{}", labels.get("service")?, labels.get("operation")?)))
        .collect();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("aws-operations");
    if std::fs::create_dir_all(&dir).is_ok()
        && let Ok(mut f) = std::fs::File::create(dir.join(name))
    {
        for op in ops {
            let _ = writeln!(f, "{op}");
        }
    }
}

async fn ensure_ingress_class(client: &Client) {
    let class: IngressClass = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "alb"},
        "spec": {"controller": "ingress.k8s.aws/alb"}
    }))
    .unwrap();
    match Api::<IngressClass>::all(client.clone()).create(&PostParams::default(), &class).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating IngressClass alb: {e}"),
    }
}

/// A kubeconfig for the ServiceAccount, ClusterRole and ClusterRoleBinding of
/// deploy/manifests.yaml (created once per bed), with a token from the TokenRequest API.
async fn service_account_kubeconfig(client: &Client, admin: &kube::config::Kubeconfig, ns: &str) -> PathBuf {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let manifests = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/manifests.yaml"));
    let pp = PostParams::default();
    let ok = |r: Result<(), kube::Error>| match r {
        Ok(()) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("applying deploy/manifests.yaml: {e}"),
    };
    let (mut sa_ns, mut sa_name) = (String::new(), String::new());
    for doc in serde_yaml::Deserializer::from_str(manifests) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
        match v["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => {
                let sa: ServiceAccount = serde_json::from_value(v).unwrap();
                sa_ns = sa.metadata.namespace.clone().unwrap();
                sa_name = sa.metadata.name.clone().unwrap();
                ok(Api::<ServiceAccount>::namespaced(client.clone(), &sa_ns).create(&pp, &sa).await.map(drop));
            }
            "ClusterRole" => {
                // Applied (not just created), so a bed kept across runs gets rule changes.
                let r: ClusterRole = serde_json::from_value(v).unwrap();
                let name = r.metadata.name.clone().unwrap();
                let apply = kube::api::PatchParams::apply("alb-controller-tests").force();
                ok(Api::<ClusterRole>::all(client.clone()).patch(&name, &apply, &kube::api::Patch::Apply(&r)).await.map(drop));
            }
            "ClusterRoleBinding" => {
                let b: ClusterRoleBinding = serde_json::from_value(v).unwrap();
                ok(Api::<ClusterRoleBinding>::all(client.clone()).create(&pp, &b).await.map(drop));
            }
            _ => {}
        }
    }
    let request =
        serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 7200}});
    let token: serde_json::Value =
        Api::<ServiceAccount>::namespaced(client.clone(), &sa_ns).create_subresource("token", &sa_name, &pp, &request).await.unwrap();
    let token = token["status"]["token"].as_str().unwrap().to_string();
    let cluster = admin.clusters[0].cluster.clone().unwrap();
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "bed", "cluster": {"server": cluster.server, "certificate-authority-data": cluster.certificate_authority_data}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "bed", "user": "sa"}}]
    });
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{ns}.kubeconfig"));
    std::fs::write(&path, serde_yaml::to_string(&kubeconfig).unwrap()).unwrap();
    path
}

/// The CRDs of deploy/crds, created once per bed and waited on until established.
async fn ensure_crds(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crd: CustomResourceDefinition =
        serde_yaml::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/crds/ingressclassparams.yaml"))).unwrap();
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    match api.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating CRD: {e}"),
    }
    let name = crd.metadata.name.unwrap();
    eventually("the IngressClassParams CRD is established", Duration::from_secs(30), || async {
        let crd = api.get(&name).await.ok()?;
        crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
    })
    .await;
}

/// The /metrics text of the controller serving on `port`.
/// Each rule's path-pattern values (comma-joined), in priority order.
pub fn rule_paths(rules: &[Rule]) -> Vec<String> {
    rules
        .iter()
        .flat_map(|r| r.conditions().iter().filter(|c| c.field() == Some("path-pattern")))
        .map(|c| match c.path_pattern_config() {
            Some(p) if !p.values().is_empty() => p.values().join(","),
            _ => c.values().join(","),
        })
        .collect()
}

pub async fn scrape(port: u16) -> String {
    get(port, "/metrics").await
}

/// The raw HTTP/1.0 response (status line, headers, body) to `GET path` on `port`.
pub async fn get(port: u16, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("metrics endpoint");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body
}

/// AWS calls a controller made, summed over every operation and outcome.
pub async fn aws_call_count(port: u16) -> u64 {
    samples(&scrape(port).await, "alb_controller_aws_api_calls_total").iter().map(|(_, v)| *v as u64).sum()
}

/// Prometheus text samples of one metric: (labels, value).
pub fn samples(text: &str, metric: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => {
                let (l, v) = r.split_once('}').unwrap();
                (l, v)
            }
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        let labels = labels
            .split("\",")
            .filter(|kv| !kv.is_empty())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim_matches(',').to_string(), v.trim_matches('"').to_string()))
            .collect();
        if let Ok(v) = value.trim().split(' ').next().unwrap_or("").parse() {
            out.push((labels, v));
        }
    }
    out
}

/// Polls `f` until it returns `Some`, or panics with `what` at the deadline.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn is_mutating(operation: &str) -> bool {
    !(operation.starts_with("Describe") || operation.starts_with("Get") || operation.starts_with("List"))
}

// ---- benches (benches/*.rs include this module) ----

/// A bench's `main`: runs `run` only under `cargo bench` (which passes `--bench`), so
/// `cargo test --all-targets` builds the bench and returns at once; exits with its code.
pub fn bench_main<F: Future<Output = i32>>(name: &str, make_targets: &str, run: impl FnOnce() -> F) {
    if !std::env::args().any(|a| a == "--bench") {
        println!("bench {name}: skipped (runs under `cargo bench` / {make_targets} only)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = rt.block_on(run());
    drop(rt);
    std::process::exit(code);
}

/// The value of the environment variable `name`, or `default` when unset or empty.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        _ => default,
    }
}

/// (VmHWM, VmRSS) in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// User + system CPU seconds of a process (USER_HZ is 100 on Linux).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat; fields 3.. start at index 0 here.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

// ---- Deployments, as a user drives them ----

impl Bed {
    /// `kubectl scale deployment NAME --replicas=N`.
    pub async fn scale(&self, deployment: &str, replicas: i32) {
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        self.api::<k8s_openapi::api::apps::v1::Deployment>()
            .patch(deployment, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// `kubectl rollout restart deployment NAME`: a new template annotation, so every pod is
    /// replaced by the Deployment's strategy.
    pub async fn rollout_restart(&self, deployment: &str) {
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos().to_string();
        let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}});
        self.api::<k8s_openapi::api::apps::v1::Deployment>()
            .patch(deployment, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Waits until the Deployment's rollout is complete, as `kubectl rollout status` judges
    /// it: its controller has seen the latest spec and every replica is updated and available
    /// (right after a template change the old pods alone can look settled).
    pub async fn wait_rollout(&self, deployment: &str) {
        let api = self.api::<k8s_openapi::api::apps::v1::Deployment>();
        eventually(&format!("the rollout of {deployment} completes"), Duration::from_secs(90), || async {
            let d = api.get(deployment).await.ok()?;
            let want = d.spec.as_ref()?.replicas.unwrap_or(1);
            let s = d.status.as_ref()?;
            let done = s.observed_generation >= d.metadata.generation
                && s.updated_replicas == Some(want)
                && s.replicas == Some(want)
                && s.available_replicas == Some(want);
            done.then_some(())
        })
        .await
    }

    /// Waits until the pods matching `selector` are exactly `n` Ready pods, none of them
    /// terminating (a scale or rollout has finished); returns their IPs.
    pub async fn wait_settled_pods(&self, selector: &str, n: usize) -> BTreeSet<String> {
        eventually(&format!("exactly {n} pods {selector}, all Ready"), Duration::from_secs(90), || async {
            let pods = self.api::<Pod>().list(&ListParams::default().labels(selector)).await.ok()?;
            let settled = pods.items.len() == n && pods.items.iter().all(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p));
            settled.then(|| pods.items.iter().filter_map(pod_ip).collect::<BTreeSet<_>>()).filter(|ips| ips.len() == n)
        })
        .await
    }
}

// ---- what the bed's cluster owns in AWS ----

impl Bed {
    /// Everything tagged with this bed's cluster: load balancers and target groups (ARNs),
    /// security groups (IDs).
    pub async fn cluster_resources(&self) -> Vec<String> {
        let mut arns: Vec<String> = self.load_balancers().await.iter().filter_map(|lb| lb.load_balancer_arn.clone()).collect();
        let tgs = self.elbv2.describe_target_groups().send().await.unwrap().target_groups.unwrap_or_default();
        arns.extend(tgs.iter().filter_map(|tg| tg.target_group_arn.clone()));
        let mut out = Vec::new();
        for arn in arns {
            if self.tags(&arn).await.get(TAG_CLUSTER) == Some(&self.cluster) {
                out.push(arn);
            }
        }
        let filter = aws_sdk_ec2::types::Filter::builder().name(format!("tag:{TAG_CLUSTER}")).values(&self.cluster).build();
        let sgs = self.ec2.describe_security_groups().filters(filter).send().await.unwrap();
        out.extend(sgs.security_groups().iter().filter_map(|g| g.group_id.clone()));
        out
    }
}

pub mod gates;

/// Ingress app-`i` (path `/app-i`, these annotations) in front of Service svc-`i` and its
/// Deployment of one pod (`app=svc-i`).
pub fn app_manifest(i: usize, annotations: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: svc-{i}}}
spec:
  selector: {{app: svc-{i}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: svc-{i}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: svc-{i}}}}}
  template:
    metadata: {{labels: {{app: svc-{i}}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers: [{{name: web, image: web, ports: [{{containerPort: 8080}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app-{i}
  annotations: {{{annotations}}}
spec:
  ingressClassName: alb
  rules:
  - http:
      paths:
      - {{path: /app-{i}, pathType: Prefix, backend: {{service: {{name: svc-{i}, port: {{number: 80}}}}}}}}
"#
    )
}
