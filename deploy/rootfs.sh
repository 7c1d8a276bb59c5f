#!/usr/bin/env bash
# Lays out the container image's whole root filesystem from this machine's files, so the
# image (deploy/Dockerfile: FROM scratch + this tree) builds without pulling anything:
#
#   deploy/rootfs.sh BINARY DIR
#
#   /usr/local/bin/alb-controller          BINARY
#   the shared libraries `ldd BINARY` names and the dynamic loader, at their paths
#   /etc/ssl/certs/ca-certificates.crt     the CA bundle (the AWS SDK and the kube client)
#   /etc/passwd, /etc/group                root and the non-root user 65532 "nonroot" (as distroless)
#   /tmp                                   world-writable, sticky
#
# No shell and no other program: the image runs only the controller. DIR is replaced.
# File times are set to SOURCE_DATE_EPOCH (default 0) so the same inputs give the same tree.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 BINARY DIR" >&2; exit 2; }
binary="$1"
dir="$2"
[[ -x $binary ]] || { echo "$0: $binary is not an executable" >&2; exit 1; }
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[[ -s $ca_bundle ]] || { echo "$0: no CA bundle at $ca_bundle (apt-get install ca-certificates)" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir/usr/local/bin" "$dir/etc/ssl/certs" "$dir/tmp"
chmod 1777 "$dir/tmp"
install -m 0755 "$binary" "$dir/usr/local/bin/alb-controller"

# `ldd` prints "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" for libraries and
# "/lib64/ld-linux-x86-64.so.2 (0x...)" for the loader; linux-vdso has no file.
libs=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[[ -n $libs ]] || { echo "$0: ldd names no libraries for $binary (a static binary needs none; check ldd)" >&2; exit 1; }
for lib in $libs; do
    # The path as the binary names it (e.g. /lib64/ld-linux-x86-64.so.2, a symlink on
    # Debian), holding the file's contents.
    mkdir -p "$dir$(dirname "$lib")"
    cp -L "$lib" "$dir$lib"
done
install -m 0644 "$ca_bundle" "$dir/etc/ssl/certs/ca-certificates.crt"
cat >"$dir/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin
EOF
cat >"$dir/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
chmod 0644 "$dir/etc/passwd" "$dir/etc/group"

find "$dir" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
echo "$dir"
