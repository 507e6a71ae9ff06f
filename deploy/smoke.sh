#!/usr/bin/env bash
# Smoke test of deploy/kubernetes on a real cluster (kind, EKS, ...): applies the base, asks
# meshca's signer for a certificate through a Kubernetes CSR (example.com/foo) approved with
# `kubectl certificate approve`, checks it with openssl against meshca's root, checks that a
# forbidden usage is refused with a Failed condition, and cleans up.
#
#   deploy/smoke.sh                      # current kubectl context, image from the kustomization
#   MESHCA_IMAGE=meshca:dev KIND_CLUSTER=kind deploy/smoke.sh   # build, load into kind, use it
#   KEEP=1 deploy/smoke.sh               # leave meshca installed afterwards
#
# Needs kubectl (with kustomize), openssl and base64; docker and kind only with KIND_CLUSTER.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
ns=meshca-system
signer=example.com/foo
image="${MESHCA_IMAGE:-}"
work="$(mktemp -d)"
csrs=()

log() { printf '\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\033[31mFAIL: %s\033[0m\n' "$*" >&2; exit 1; }

cleanup() {
  local code=$?
  for c in "${csrs[@]}"; do kubectl delete csr "$c" --ignore-not-found >/dev/null 2>&1 || true; done
  if [[ "${KEEP:-}" != 1 ]]; then
    log "removing meshca (KEEP=1 keeps it)"
    render | kubectl delete --ignore-not-found -f - >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT

render() {
  if [[ -n "$image" ]]; then
    kubectl kustomize "$here/kubernetes" | sed "s#image: ghcr.io/meshca/meshca:0.1.0#image: $image#"
  else
    kubectl kustomize "$here/kubernetes"
  fi
}

for tool in kubectl openssl base64; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done
kubectl version --request-timeout=10s >/dev/null || fail "no cluster reachable with the current kubectl context"

if [[ -n "${KIND_CLUSTER:-}" ]]; then
  [[ -n "$image" ]] || image=meshca:smoke
  log "building $image and loading it into kind cluster $KIND_CLUSTER"
  docker build -q -f "$here/Dockerfile" -t "$image" "$repo" >/dev/null
  kind load docker-image "$image" --name "$KIND_CLUSTER"
fi

log "applying deploy/kubernetes"
# The Role that lets meshca publish Istio's secrets lives in istio-system.
kubectl create namespace istio-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
render | kubectl apply -f -
kubectl -n "$ns" rollout status deploy/meshca --timeout=180s

# Waits for the state Secret the first replica creates, then reads the root from it.
for _ in $(seq 60); do
  kubectl -n "$ns" get secret meshca-state >/dev/null 2>&1 && break
  sleep 2
done
kubectl -n "$ns" get secret meshca-state -o jsonpath='{.data.root-cert\.pem}' | base64 -d >"$work/root.pem"
openssl x509 -in "$work/root.pem" -noout -subject >/dev/null || fail "meshca-state holds no root certificate"

# submit NAME USAGES...: a fresh P-256 key and CSR, as a CertificateSigningRequest for $signer.
submit() {
  local name="$1"; shift
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/$name.key" \
    -subj "/CN=$name.smoke.example.com" -addext "subjectAltName=DNS:$name.smoke.example.com" -out "$work/$name.csr" 2>/dev/null
  local usages=""
  for u in "$@"; do usages+="    - $u"$'\n'; done
  kubectl create -f - >/dev/null <<YAML
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: $name
spec:
  request: $(base64 <"$work/$name.csr" | tr -d '\n')
  signerName: $signer
  expirationSeconds: 3600
  usages:
$usages
YAML
  csrs+=("$name")
  kubectl certificate approve "$name" >/dev/null
}

# wait_for NAME: prints "issued" or the Failed reason once the signer has answered.
wait_for() {
  for _ in $(seq 60); do
    local cert reason
    cert="$(kubectl get csr "$1" -o jsonpath='{.status.certificate}')"
    if [[ -n "$cert" ]]; then echo issued; return; fi
    reason="$(kubectl get csr "$1" -o jsonpath='{.status.conditions[?(@.type=="Failed")].reason}')"
    if [[ -n "$reason" ]]; then echo "$reason"; return; fi
    sleep 1
  done
  echo timeout
}

suffix="$(date +%s)"
good="meshca-smoke-$suffix"
log "CSR $good for $signer, approved with kubectl certificate approve"
submit "$good" "digital signature" "key encipherment" "server auth"
outcome="$(wait_for "$good")"
[[ "$outcome" == issued ]] || fail "CSR $good was not signed: $outcome"

kubectl get csr "$good" -o jsonpath='{.status.certificate}' | base64 -d >"$work/chain.pem"
# status.certificate is the leaf then the intermediates; the root comes from meshca-state.
awk -v dir="$work" '/BEGIN CERTIFICATE/{n++} {print > (dir "/cert" n ".pem")}' "$work/chain.pem"
cat "$work"/cert[2-9].pem >"$work/intermediates.pem" 2>/dev/null || : >"$work/intermediates.pem"
openssl verify -x509_strict -purpose sslserver -CAfile "$work/root.pem" -untrusted "$work/intermediates.pem" "$work/cert1.pem" \
  || fail "the certificate does not verify to meshca's root"
[[ "$(openssl x509 -in "$work/cert1.pem" -noout -pubkey)" == "$(openssl pkey -in "$work/$good.key" -pubout)" ]] \
  || fail "the certificate is not for the CSR's key"
openssl x509 -in "$work/cert1.pem" -noout -ext subjectAltName | grep -q "DNS:$good.smoke.example.com" || fail "SAN missing"
# expirationSeconds 3600 honoured (portable: no date arithmetic): valid in 3000 s, expired in 3700 s.
openssl x509 -in "$work/cert1.pem" -noout -checkend 3000 >/dev/null || fail "the certificate expires too early for expirationSeconds 3600"
! openssl x509 -in "$work/cert1.pem" -noout -checkend 3700 >/dev/null || fail "the certificate outlives expirationSeconds 3600"
openssl x509 -in "$work/cert1.pem" -noout -subject -issuer -dates

bad="meshca-smoke-certsign-$suffix"
log "CSR $bad asking for 'cert sign' must be Failed, not signed"
submit "$bad" "digital signature" "cert sign"
outcome="$(wait_for "$bad")"
[[ "$outcome" == UnsupportedUsage ]] || fail "CSR $bad: expected Failed UnsupportedUsage, got $outcome"

log "smoke test passed"
