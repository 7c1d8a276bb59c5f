#!/usr/bin/env bash
# The container image (deploy/Dockerfile), built with buildah: no Docker engine, nothing pulled.
#
#   hack/image.sh deps           install Debian's buildah if it is missing (`make deps`)
#   hack/image.sh build BINARY   deploy/rootfs.sh BINARY into the build context, `buildah bud`,
#                                tag IMAGE_TAG and write IMAGE_ARCHIVE (`make image`)
#
#   IMAGE_TAG      default alb-controller:<Cargo.toml version> (buildah stores it as localhost/...)
#   IMAGE_CONTEXT  the build context, default the repository (.dockerignore keeps only
#                  target/image/rootfs); the rootfs goes to $IMAGE_CONTEXT/target/image/rootfs
#   IMAGE_ARCHIVE  the OCI archive written, default target/alb-controller-image.oci.tar;
#                  empty: none
#   BUILDAH_ROOT   buildah's storage, default target/buildah: images are build output of this
#                  clone, like its binaries, so they are never shared with another clone or
#                  with the host's /var/lib/containers, and `make clean` removes them
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILDAH_ROOT="${BUILDAH_ROOT:-$REPO/target/buildah}"

# Debian's buildah 1.28 runs here as root with the vfs driver (no overlay mounts needed)
# and chroot isolation (no runc); the Dockerfile has no RUN step, so isolation only
# matters to `buildah run` (tests/image.rs).
buildah() {
    command buildah --root "$BUILDAH_ROOT/storage" --runroot "$BUILDAH_ROOT/run" --storage-driver vfs "$@"
}

deps() {
    # type -P: the buildah() function above would satisfy `command -v`.
    type -P buildah >/dev/null && return 0
    if [[ $(id -u) != 0 ]]; then
        echo "image.sh: buildah is missing; install it (Debian: apt-get install -y buildah)" >&2
        exit 1
    fi
    echo "image.sh: installing buildah (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q buildah >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q buildah >/dev/null; }
}

case "${1:-}" in
deps)
    deps
    ;;
build)
    [[ $# -eq 2 ]] || { echo "usage: $0 build BINARY" >&2; exit 2; }
    deps
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -1)
    tag="${IMAGE_TAG:-alb-controller:$version}"
    context="${IMAGE_CONTEXT:-$REPO}"
    archive="${IMAGE_ARCHIVE-$REPO/target/alb-controller-image.oci.tar}"
    "$REPO/deploy/rootfs.sh" "$2" "$context/target/image/rootfs" >/dev/null
    # --timestamp 0 (and deploy/rootfs.sh's file times): the same binary gives the same image ID.
    buildah bud --quiet --isolation chroot --timestamp 0 -f "$REPO/deploy/Dockerfile" -t "$tag" "$context" >/dev/null
    if [[ -n $archive ]]; then
        rm -f "$archive"
        buildah push --quiet "$tag" "oci-archive:$archive:$tag" >/dev/null
        echo "image.sh: $tag, $(du -h "$archive" | cut -f1) as $archive" >&2
    fi
    echo "$tag"
    ;;
*)
    echo "usage: $0 deps | build BINARY" >&2
    exit 2
    ;;
esac
