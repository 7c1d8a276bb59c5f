#!/usr/bin/env bash
# Start a local Kubernetes control plane on 127.0.0.1 (free ports) for tests: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, and KWOK as the kubelet of
# every node annotated kwok.x-k8s.io/node=fake (pod lifecycles and node heartbeats; see
# kwok/stages.yaml). Nodes are made by whoever needs them (localstack/seed.py makes the EC2
# instances behind them; tests/support and hack/nodes.sh the Node objects).
# Installs the Gateway API $GATEWAY_API_VERSION standard CRDs and deploy/crds, waiting until
# they are Established. Idempotent: if it is already running and ready, does nothing.
#
#   BED_DIR        state dir (default: <repo>/.bed); this script uses $BED_DIR/k8s
#   ALB_CACHE      binary cache root (see install.sh)
#   READY_TIMEOUT  seconds to wait for /readyz (default 90)
#
# Writes:
#   $BED_DIR/k8s/kubeconfig   admin kubeconfig (client cert, CN=admin O=system:masters;
#                             context "bed-token" uses the bearer token instead)
#   $BED_DIR/k8s.env          source it: KUBECONFIG, PATH (kubectl), BED_K8S_* vars
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.sh
. "$HERE/versions.sh"

BED_DIR="${BED_DIR:-$REPO/.bed}"
mkdir -p "$BED_DIR"
BED_DIR="$(cd "$BED_DIR" && pwd)"
K="$BED_DIR/k8s"
PKI="$K/pki"
READY_TIMEOUT="${READY_TIMEOUT:-90}"
T0=$(date +%s.%N)

log() { echo "up.sh: $*" >&2; }
elapsed() { python3 -c "import sys;print('%.1f'%(float(sys.argv[2])-float(sys.argv[1])))" "$T0" "$(date +%s.%N)"; }

alive() { # alive NAME -> pid file exists and process runs our binary
    local f="$K/$1.pid" pid
    [[ -f $f ]] || return 1
    pid=$(cat "$f")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)" | sed "s/ (deleted)$//") == "$1" ]]
}

readyz() { # readyz -> 0 when the apiserver answers /readyz with ok
    [[ -f $K/ports.env ]] || return 1
    # shellcheck disable=SC1091
    . "$K/ports.env"
    curl -fsS --max-time 5 --cacert "$PKI/ca.crt" \
        -H "Authorization: Bearer $(cat "$PKI/admin.token")" \
        "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

# --- already running? -------------------------------------------------------
COMPONENTS=(kube-controller-manager kube-scheduler kwok)
all_alive() {
    local c
    for c in etcd kube-apiserver "${COMPONENTS[@]}"; do alive "$c" || return 1; done
}
if all_alive && readyz && [[ -f $K/kubeconfig && -f $BED_DIR/k8s.env ]]; then
    log "already running and ready (https://127.0.0.1:$APISERVER_PORT)"
    exit 0
fi
if compgen -G "$K/*.pid" >/dev/null; then
    log "stale or unready control plane found; restarting"
    "$HERE/down.sh"
fi

# --- binaries ---------------------------------------------------------------
if [[ ! -x $K8S_BIN_DIR/kube-apiserver || ! -x $K8S_BIN_DIR/kube-controller-manager || ! -x $K8S_BIN_DIR/kube-scheduler ||
    ! -x $ETCD_BIN_DIR/etcd || ! -x $KWOK_BIN_DIR/kwok ]]; then
    "$HERE/install.sh" >/dev/null
fi
KUBECTL_DIR="$K8S_BIN_DIR"

mkdir -p "$K" "$PKI"

# --- PKI (generated once per BED_DIR, reused across restarts) ---------------
issue() { # issue NAME SUBJECT server|client: a key and CA-signed certificate, unless present
    local d=$PKI n=$1
    [[ -f $d/$n.crt && -f $d/$n.key ]] && return 0
    (
        umask 077
        openssl ecparam -name prime256v1 -genkey -noout -out "$d/$n.key.ec"
        openssl pkcs8 -topk8 -nocrypt -in "$d/$n.key.ec" -out "$d/$n.key" && rm -f "$d/$n.key.ec"
        openssl req -new -key "$d/$n.key" -subj "$2" -out "$d/$n.csr"
        openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
            -sha256 -days 3650 -extfile "$d/openssl.cnf" -extensions "$3" -out "$d/$n.crt" 2>/dev/null
        rm -f "$d/$n.csr"
    )
}
gen_pki() {
    local d=$PKI
    umask 077
    cat >"$d/openssl.cnf" <<'EOF'
[ ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:10.96.0.1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
EOF
    local cnf="$d/openssl.cnf"
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key.ec"
    openssl pkcs8 -topk8 -nocrypt -in "$d/ca.key.ec" -out "$d/ca.key" && rm -f "$d/ca.key.ec"
    openssl req -x509 -new -key "$d/ca.key" -sha256 -days 3650 -subj "/CN=alb-bed-ca" \
        -config "$cnf" -extensions ca -out "$d/ca.crt" 2>/dev/null
    issue apiserver /CN=kube-apiserver server
    issue admin /O=system:masters/CN=admin client
    # service-account token signing key
    openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
    openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
    # static bearer token for the same admin identity
    openssl rand -hex 32 >"$d/admin.token"
    echo "$(cat "$d/admin.token"),admin,admin-token-uid,\"system:masters\"" >"$d/tokens.csv"
    touch "$d/.complete"
}
if [[ ! -f $PKI/.complete ]]; then
    rm -rf "$PKI" && mkdir -p "$PKI"
    gen_pki
fi
# The other components' identities, as a real cluster names them: the bootstrap RBAC
# policy grants system:kube-controller-manager and system:kube-scheduler their roles;
# KWOK gets the ClusterRole below. (Issued here too for PKI made before they existed.)
issue kube-controller-manager /CN=system:kube-controller-manager client
issue kube-scheduler /CN=system:kube-scheduler client
issue kwok /CN=system:kwok-controller client

# --- ports --------------------------------------------------------------------
read -r ETCD_CLIENT_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT KWOK_PORT < <(python3 - <<'EOF'
import socket
ss = []
for _ in range(6):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ss.append(s)
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()
EOF
)
cat >"$K/ports.env" <<EOF
ETCD_CLIENT_PORT=$ETCD_CLIENT_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
APISERVER_PORT=$APISERVER_PORT
KCM_PORT=$KCM_PORT
SCHEDULER_PORT=$SCHEDULER_PORT
KWOK_PORT=$KWOK_PORT
EOF

tail_fail() { # tail_fail NAME MESSAGE
    log "$2; last lines of $K/$1.log:"
    tail -n 40 "$K/$1.log" >&2 || true
    "$HERE/down.sh" >/dev/null 2>&1 || true
    exit 1
}

# --- etcd -----------------------------------------------------------------------
rm -rf "$K/etcd"
mkdir -p "$K/etcd"
chmod 700 "$K/etcd"
setsid nohup "$ETCD_BIN_DIR/etcd" \
    --name bed \
    --data-dir "$K/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "bed=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state new \
    --unsafe-no-fsync \
    --log-level warn \
    </dev/null >"$K/etcd.log" 2>&1 &
echo $! >"$K/etcd.pid"

deadline=$(( $(date +%s) + READY_TIMEOUT ))
until curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" 2>/dev/null | grep -q '"health":"true"'; do
    alive etcd || tail_fail etcd "etcd exited"
    (( $(date +%s) < deadline )) || tail_fail etcd "etcd not healthy after ${READY_TIMEOUT}s"
    sleep 0.2
done

# --- kube-apiserver ---------------------------------------------------------------
: >"$K/kube-apiserver.log"
READY_TIMEOUT=$(( deadline - $(date +%s) )) "$HERE/apiserver.sh" start ||
    tail_fail kube-apiserver "kube-apiserver did not become ready"

# --- kubeconfig + env -------------------------------------------------------------
b64() { base64 -w0 <"$1"; }
SERVER="https://127.0.0.1:$APISERVER_PORT"
umask 077
cat >"$K/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bed
  cluster:
    server: $SERVER
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
- name: admin-token
  user:
    token: $(cat "$PKI/admin.token")
contexts:
- name: bed
  context:
    cluster: bed
    user: admin
- name: bed-token
  context:
    cluster: bed
    user: admin-token
current-context: bed
EOF
mv -f "$K/kubeconfig.tmp" "$K/kubeconfig"

# --- controller-manager, scheduler, KWOK ------------------------------------------
component_kubeconfig() { # component_kubeconfig NAME -> $K/NAME.kubeconfig with NAME's client cert
    cat >"$K/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bed
  cluster:
    server: $SERVER
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(b64 "$PKI/$1.crt")
    client-key-data: $(b64 "$PKI/$1.key")
contexts:
- name: bed
  context:
    cluster: bed
    user: $1
current-context: bed
EOF
}
start_component() { # start_component NAME ARGS...: runs the cached binary NAME in the background
    local name=$1 bin
    shift
    case $name in
    kwok) bin=$KWOK_BIN_DIR/kwok ;;
    *) bin=$K8S_BIN_DIR/$name ;;
    esac
    component_kubeconfig "$name"
    setsid nohup "$bin" "$@" </dev/null >"$K/$name.log" 2>&1 &
    echo $! >"$K/$name.pid"
}
healthy() { # healthy NAME URL -> 0 when NAME answers URL with ok
    alive "$1" || tail_fail "$1" "$1 exited"
    [[ $(curl -ksS --max-time 2 "$2" 2>/dev/null) == ok ]]
}

# KWOK acts for the kubelets of its nodes: what a kubelet's node authorizer allows it.
"$KUBECTL_DIR/kubectl" --kubeconfig "$K/kubeconfig" apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:kwok-controller"}
rules:
- apiGroups: [""]
  resources: [nodes, pods]
  verbs: [get, list, watch, update, patch, delete]
- apiGroups: [""]
  resources: [nodes/status, pods/status]
  verbs: [update, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch, update]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:kwok-controller"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:kwok-controller"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:kwok-controller"}
EOF

# As kubeadm runs it, less what needs a cloud: every controller under its own service
# account, the service-account token signer, the cluster CA for CSRs. Node CIDRs are not
# allocated: each node's podCIDR is the block of addresses its ENI holds (VPC CNI style).
start_component kube-controller-manager \
    --kubeconfig "$K/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$K/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$K/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --cert-dir "$K/kcm-certs" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI/sa.key" \
    --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" \
    --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allocate-node-cidrs=false \
    --profiling=false
start_component kube-scheduler \
    --kubeconfig "$K/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$K/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$K/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
    --cert-dir "$K/scheduler-certs" \
    --leader-elect=false \
    --profiling=false
start_component kwok \
    --kubeconfig "$K/kwok.kubeconfig" \
    --config "$HERE/kwok/stages.yaml" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds 40 \
    --server-address "127.0.0.1:$KWOK_PORT"
until healthy kube-controller-manager "https://127.0.0.1:$KCM_PORT/healthz" &&
    healthy kube-scheduler "https://127.0.0.1:$SCHEDULER_PORT/healthz" &&
    healthy kwok "http://127.0.0.1:$KWOK_PORT/healthz"; do
    (( $(date +%s) < deadline )) || tail_fail kube-controller-manager "controller-manager, scheduler or kwok not healthy after ${READY_TIMEOUT}s"
    sleep 0.3
done

# --- CRDs: Gateway API (standard channel) and ours (deploy/crds) --------------------
# Server-side apply: the Gateway API CRDs are too large for kubectl's last-applied annotation.
GATEWAY_CRDS="$("$HERE/gateway-crds.sh")"
"$KUBECTL_DIR/kubectl" --kubeconfig "$K/kubeconfig" apply --server-side --force-conflicts \
    -f "$GATEWAY_CRDS" -f "$REPO/deploy/crds" >/dev/null
CRDS=$("$KUBECTL_DIR/kubectl" --kubeconfig "$K/kubeconfig" get crd -o name)
"$KUBECTL_DIR/kubectl" --kubeconfig "$K/kubeconfig" wait --for=condition=Established \
    --timeout=60s $CRDS >/dev/null ||
    tail_fail kube-apiserver "CRDs not established"

cat >"$BED_DIR/k8s.env.tmp" <<EOF
# Generated by hack/controlplane/up.sh — source it.
export KUBECONFIG=$K/kubeconfig
export PATH=$KUBECTL_DIR:\$PATH
export BED_K8S_SERVER=$SERVER
export BED_K8S_CA_CERT=$PKI/ca.crt
export BED_K8S_CA_KEY=$PKI/ca.key
export BED_K8S_TOKEN_FILE=$PKI/admin.token
export BED_K8S_ETCD=http://127.0.0.1:$ETCD_CLIENT_PORT
EOF
mv -f "$BED_DIR/k8s.env.tmp" "$BED_DIR/k8s.env"

log "ready at $SERVER after $(elapsed)s; source $BED_DIR/k8s.env"
