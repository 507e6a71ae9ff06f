#!/usr/bin/env bash
# Builds meshca's container image from Debian packages only and runs it once, with Debian's
# debootstrap, buildah and podman (no Docker engine, no Docker Hub):
#
#   1. base: `debootstrap --variant=minbase bookworm` from this machine's Debian mirror, upgraded
#      from bookworm-updates and bookworm-security, plus this machine's Node.js (Debian's own
#      nodejs is 18; meshca needs 20): its node binary, npm and headers copied under /usr/local,
#      where the official node image has them. Imported with `podman import` as $MESHCA_BASE_IMAGE
#      (built once, reused until --rebuild-base).
#   2. image: deploy/Dockerfile with `--build-arg NODE_IMAGE=<base>`: its build stage runs
#      `npm ci` inside the base, so the native addons are compiled against the image's own glibc.
#   3. run: `serve` in a container (read-only root filesystem, state on a volume, as the
#      Deployment runs it) until /readyz answers, then `agent --once` in a second container gets
#      a workload certificate over the published gRPC port; openssl verifies it.
#
#   deploy/image/build.sh                  # all three steps
#   deploy/image/build.sh --no-run         # base and image only
#   deploy/image/build.sh --run            # run the image built before
#   deploy/image/build.sh --rebuild-base   # debootstrap again
#   deploy/image/build.sh --plan           # print what it would use, change nothing
#
# Environment: MESHCA_IMAGE (localhost/meshca:dev), MESHCA_BASE_IMAGE
# (localhost/meshca-node:20-bookworm), MESHCA_DEBIAN_MIRROR and MESHCA_DEBIAN_SECURITY_MIRROR
# (default: the first ones in APT_SOURCES, /etc/apt/sources.list and sources.list.d),
# MESHCA_OCI_RUNTIME (runc if installed). Needs root.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
suite=bookworm
image="${MESHCA_IMAGE:-localhost/meshca:dev}"
base="${MESHCA_BASE_IMAGE:-localhost/meshca-node:20-bookworm}"
node_major_min="$(sed -n 's/.*"node": *">=\([0-9]*\).*/\1/p' "$repo/package.json")"
uid="$(sed -n 's/^USER \([0-9]*\):.*/\1/p' "$repo/deploy/Dockerfile")"

log() { printf '\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\033[31mFAIL: %s\033[0m\n' "$*" >&2; exit 1; }

# mirror_of ARCHIVE: the first non-commented http(s) URI ending in /ARCHIVE in the APT sources,
# one-line (`deb URI suite ...`) or deb822 (`URIs: URI`) format.
mirror_of() {
  local sources=("${APT_SOURCES:-/etc/apt/sources.list}")
  [[ -n "${APT_SOURCES:-}" ]] || sources+=(/etc/apt/sources.list.d)
  grep -rhsv '^[[:space:]]*#' "${sources[@]}" \
    | grep -oE "https?://[^[:space:]]+/$1/?([[:space:]]|$)" | head -n 1 | tr -d '[:space:]' | sed 's#/$##' || true
}
mirror="${MESHCA_DEBIAN_MIRROR:-$(mirror_of debian)}"
security="${MESHCA_DEBIAN_SECURITY_MIRROR:-$(mirror_of debian-security)}"
runtime="${MESHCA_OCI_RUNTIME:-$(command -v runc >/dev/null 2>&1 && echo runc || echo crun)}"

# crun 1.8 refuses hosts with cgroup v1 and v2 mounted side by side ("cgroups in hybrid mode not
# supported"); runc runs there. Without CAP_SYS_RESOURCE a runtime cannot raise rlimits above
# the hard limits it inherits, and podman's defaults are higher: nofile is capped at this shell's
# hard limit, nproc at 4096 (the limit the runtime inherits can be lower than this shell's).
nofile="$(ulimit -Hn)"
[[ "$nofile" == unlimited || "$nofile" -gt 65536 ]] && nofile=65536
run_flags=(--runtime "$runtime" --ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)

mode=all
rebuild_base=0
for a in "$@"; do
  case "$a" in
    --no-run) mode=build ;;
    --run) mode=run ;;
    --rebuild-base) rebuild_base=1 ;;
    --plan) mode=plan ;;
    *) fail "unknown option $a (see the header of $0)" ;;
  esac
done

if [[ "$mode" == plan ]]; then
  printf 'suite\t%s\nmirror\t%s\nsecurity\t%s\nbase\t%s\nimage\t%s\nruntime\t%s\nnode\t>=%s\nuser\t%s\n' \
    "$suite" "${mirror:-none}" "${security:-none}" "$base" "$image" "$runtime" "$node_major_min" "$uid"
  exit 0
fi

[[ "$(id -u)" == 0 ]] || fail "run as root: debootstrap and podman's root storage need it"
for tool in debootstrap podman buildah openssl curl "$runtime"; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install -y debootstrap podman buildah $runtime openssl curl)"
done

work="$(mktemp -d "${TMPDIR:-/var/tmp}/meshca-image.XXXXXX")"
container=""
cleanup() {
  local code=$?
  [[ -z "$container" ]] || podman rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT

timed() {
  local start=$SECONDS
  "$@"
  log "$1: $((SECONDS - start)) s"
}

make_base() {
  [[ -n "$mirror" ]] || fail "no Debian mirror in the APT sources; set MESHCA_DEBIAN_MIRROR"
  local node
  node="$(readlink -f "$(command -v node)")" || fail "node is not installed"
  local prefix major
  prefix="$(dirname "$(dirname "$node")")"
  major="$("$node" -p 'process.versions.node.split(".")[0]')"
  [[ "$major" -ge "$node_major_min" ]] || fail "this machine's node is $("$node" --version); meshca needs >= $node_major_min"
  [[ -f "$prefix/include/node/node_api.h" && -d "$prefix/lib/node_modules/npm" ]] \
    || fail "npm or Node's headers are not beside $node (expected $prefix/lib/node_modules/npm and $prefix/include/node)"

  local root="$work/rootfs"
  log "debootstrap --variant=minbase $suite from $mirror"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed (log above)"; }

  log "upgrading from $suite-updates${security:+ and $suite-security}"
  {
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    [[ -z "$security" ]] || echo "deb $security $suite-security main"
  } >"$root/etc/apt/sources.list"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -q && apt-get -y -q upgrade && apt-get clean' \
    >"$work/upgrade.log" 2>&1 || { tail -n 20 "$work/upgrade.log" >&2; fail "apt-get upgrade in the base failed (log above)"; }
  rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*

  log "adding Node.js $("$node" --version) from $prefix"
  install -D -m 0755 "$node" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/lib/node_modules" "$root/usr/local/include"
  cp -a "$prefix/lib/node_modules/npm" "$root/usr/local/lib/node_modules/npm"
  cp -a "$prefix/include/node" "$root/usr/local/include/node"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # The binary must load with the base's own libraries.
  [[ "$(chroot "$root" /usr/local/bin/node -p 'process.versions.node.split(".")[0]')" == "$major" ]] \
    || fail "node does not run inside the debootstrapped root"

  log "importing the base as $base"
  # npm_config_nodedir: node-gyp builds addons against these headers instead of downloading them.
  tar -C "$root" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV npm_config_nodedir=/usr/local' \
    --change 'CMD ["node"]' - "$base" >/dev/null
  rm -rf "$root"
}

build_image() {
  log "building $image from deploy/Dockerfile on $base"
  local mounts=()
  # Where npm here trusts an extra CA (a TLS-inspecting proxy to the registry), the build stage's
  # npm gets the same: bind-mounted for the RUN steps only, never committed to a layer.
  local cafile
  cafile="$(npm config get cafile 2>/dev/null || true)"
  if [[ -n "$cafile" && "$cafile" != null && "$cafile" != undefined && -f "$cafile" ]]; then
    log "the build's npm trusts $cafile, as npm does here"
    printf 'cafile=/run/meshca-build/ca.crt\n' >"$work/npmrc"
    mounts+=(-v "$cafile:/run/meshca-build/ca.crt:ro" -v "$work/npmrc:/root/.npmrc:ro")
  fi
  buildah build --runtime "$runtime" --layers "${mounts[@]}" --build-arg "NODE_IMAGE=$base" \
    -f "$repo/deploy/Dockerfile" -t "$image" "$repo"
}

# Polls CMD... until it succeeds, for at most $1 seconds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -lt $deadline ]] || return 1
    sleep 1
  done
}

# Matched as a suffix: DER may pad a serial with a leading zero byte that openssl does not print.
audited() { curl -fsS "http://$1/v1/certificates?limit=20" | grep -qi "$2\""; }

run_once() {
  podman image exists "$image" || fail "no image $image: build it first (without --run)"
  local state="$work/state" out="$work/agent"
  mkdir -p "$state" "$out"
  # The image runs as the Dockerfile's USER, as the Deployment does; its volumes must be writable by it.
  chown "$uid:$uid" "$state" "$out"

  container="meshca-image-check-$$"
  log "podman run $image serve (read-only root filesystem, state on a volume)"
  podman run -d --name "$container" "${run_flags[@]}" --read-only --tmpfs /tmp \
    -v "$state:/var/lib/meshca" -p 127.0.0.1::15012 -p 127.0.0.1::15014 \
    "$image" serve --dir /var/lib/meshca --grpc-addr 0.0.0.0:15012 --http-addr 0.0.0.0:15014 >/dev/null
  local grpc http
  grpc="$(podman port "$container" 15012/tcp | head -n 1)"
  http="$(podman port "$container" 15014/tcp | head -n 1)"

  local deadline=$((SECONDS + 120))
  until curl -fsS "http://$http/readyz" >/dev/null 2>&1; do
    if [[ "$(podman inspect -f '{{.State.Running}}' "$container")" != true || $SECONDS -ge $deadline ]]; then
      podman logs "$container" >&2 || true
      fail "serve did not become ready on http://$http/readyz (its output above)"
    fi
    sleep 1
  done
  log "serve is ready: http://$http/readyz answers $(curl -fsS "http://$http/readyz" | tr -d ' \n'); gRPC on $grpc"
  [[ "$(podman exec "$container" node -p 'process.getuid()')" == "$uid" ]] || fail "serve does not run as $uid"
  # The native signature checks were compiled in the build stage against the image's own libraries.
  curl -fsS "http://$http/v1/ca" | grep -qE '"nativeSignatureChecks": *"loaded"' \
    || fail "serve did not load its native signature checks: $(curl -fsS "http://$http/v1/ca" | grep nativeSignatureChecks)"

  podman exec "$container" node /app/bin/meshca.js token --dir /var/lib/meshca -n default -s web >"$out/web.token"
  cp "$state/root/root-cert.pem" "$out/root-cert.pem"
  chown "$uid:$uid" "$out"/*
  log "agent --once in a second container, over the published port $grpc"
  podman run --rm "${run_flags[@]}" --network host -v "$out:/work" "$image" \
    agent --ca-addr "$grpc" --ca-root /work/root-cert.pem --token-file /work/web.token --out /work/certs --once

  local certs="$out/certs"
  awk -v dir="$work" '/BEGIN CERTIFICATE/{n++} {print > (dir "/cert" n ".pem")}' "$certs/cert-chain.pem"
  cat "$work"/cert[2-9].pem >"$work/intermediates.pem"
  openssl verify -x509_strict -CAfile "$out/root-cert.pem" -untrusted "$work/intermediates.pem" "$work/cert1.pem" \
    || fail "the workload certificate does not verify to the root in the state volume"
  cmp -s "$certs/root-cert.pem" "$out/root-cert.pem" || fail "the agent wrote a root other than serve's"
  openssl x509 -in "$work/cert1.pem" -noout -ext subjectAltName | grep -q 'URI:spiffe://cluster.local/ns/default/sa/web' \
    || fail "the certificate is not for spiffe://cluster.local/ns/default/sa/web"
  [[ "$(openssl x509 -in "$work/cert1.pem" -noout -pubkey)" == "$(openssl pkey -in "$certs/key.pem" -pubout)" ]] \
    || fail "the certificate is not for the agent's key"
  local mode
  mode="$(stat -L -c %a "$certs/key.pem")"
  [[ "$mode" == 600 ]] || fail "key.pem is mode $mode, not 0600"
  # The audit row, written through better-sqlite3 (the other native addon) into the state volume.
  local serial
  serial="$(openssl x509 -in "$work/cert1.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')"
  wait_for 30 audited "$http" "$serial" || fail "no audit row for serial $serial on http://$http/v1/certificates"
  openssl x509 -in "$work/cert1.pem" -noout -serial -issuer -dates -ext subjectAltName
  log "the image served a workload certificate that openssl verifies"
}

case "$mode" in
  all | build)
    if [[ "$rebuild_base" == 1 ]] || ! podman image exists "$base"; then timed make_base; else log "reusing $base (--rebuild-base makes it again)"; fi
    timed build_image
    [[ "$mode" == build ]] || timed run_once
    ;;
  run) timed run_once ;;
esac
