# alb-controller — the commands a newcomer needs.
#   make demo   bed + controller + examples, prints the ALB read back from the AWS API
#   make down   stops what `make demo` started
#   make test   every unit and integration test on a private bed (non-zero on failure)
#   make lint   clippy (warnings are errors) and rustfmt check
#   make bench  N Ingresses (BENCH_INGRESSES, default 200) on a private bed: wall time, AWS calls,
#               resync calls, peak RSS, LocalStack's raw rate
#
# Heavy tools (kube-apiserver, etcd, kubectl, the LocalStack venv) are built once and
# cached under $(ALB_CACHE), keyed by version.

ALB_CACHE ?= $(HOME)/.cache/alb-controller
export ALB_CACHE

.PHONY: all build deps demo down test bench lint unit clean

all: build

build:
	cargo build

# Installs what is missing: Rust comes with the machine (rustup); Go builds the control
# plane; Python builds the LocalStack venv. Each step is a no-op once cached.
deps:
	hack/controlplane/install.sh
	localstack/install.sh >/dev/null

demo: deps
	hack/demo.sh

down:
	hack/down.sh

test: deps
	hack/test.sh

bench: deps
	hack/bench.sh

unit:
	cargo test --bins

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

clean:
	cargo clean
	rm -rf .bed
