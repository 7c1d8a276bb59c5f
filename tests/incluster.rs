//! The controller with in-cluster configuration on this host, without the image: the
//! ServiceAccount token, CA and namespace files at /var/run/secrets/kubernetes.io/serviceaccount
//! (in a private mount namespace), `KUBERNETES_SERVICE_HOST/PORT`, no KUBECONFIG and a HOME
//! without ~/.kube, exactly as a pod of deploy/manifests.yaml sees them. That is the path
//! EKS uses: `Client::try_default()` falls back to it when there is no kubeconfig.
//! tests/image.rs runs the same from the image.

mod support;

use support::Bed;
use support::incluster::{PodIdentity, assert_ingress_converges, assert_namespace_deleted, spawn_in_mount_namespace};

#[tokio::test]
async fn the_controller_converges_with_in_cluster_configuration() {
    let mut bed = Bed::start("incluster").await;
    // The bed's controller uses a kubeconfig: only the in-cluster one may act.
    bed.kill_controller();
    let pod = PodIdentity::of(&bed);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_alb-controller"));
    let mut controller = spawn_in_mount_namespace(&bed, &pod, bin, &endpoint);
    assert_ingress_converges(&bed, &mut controller).await;
    assert_namespace_deleted(&bed, &mut controller).await;
    // The mounts were private: the host does not see the test's token there.
    let host_token = std::fs::read(std::path::Path::new(support::incluster::SERVICE_ACCOUNT_DIR).join("token")).ok();
    assert_ne!(host_token, std::fs::read(pod.dir.join("token")).ok(), "the host's /var/run is untouched");
}
