#!/usr/bin/env bash
# Offline checks of the deployment files (no Docker engine or cluster needed):
#   - YAML of docker-compose.yml and k8s/*.yaml parses (python3-yaml), with the
#     expected kinds, probes and annotations;
#   - `kubectl kustomize deploy/k8s` builds, when kubectl is installed;
#   - the configuration files (deploy/xsell.conf, and the ConfigMap's xsell.conf
#     with the Secret's secrets.conf, as the pod loads them) pass
#     `xsell config --check`;
#   - the PodDisruptionBudget and the ServiceMonitor select the worker's pods
#     and Service port;
#   - the systemd unit passes `systemd-analyze verify` (ExecStart pointed at the
#     built binary), when systemd-analyze is installed;
#   - the Dockerfile uses known instructions, its COPY sources exist and its
#     runtime stage runs as a non-root user.
# Usage: deploy/check.sh [BIN_DIR]   (default build/bin)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$tmp" <<'PY'
import glob, sys, yaml
tmp = sys.argv[1]
compose = yaml.safe_load(open("deploy/docker-compose.yml"))
svc = compose["services"]
assert set(svc) == {"kafka", "topics", "worker"}, svc.keys()
env = svc["kafka"]["environment"]
assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft combined mode"
assert svc["kafka"]["image"].startswith("apache/kafka:")
assert svc["worker"]["build"]["dockerfile"] == "deploy/Dockerfile"
kinds = {}
for f in sorted(glob.glob("deploy/k8s/*.yaml")):
    for d in yaml.safe_load_all(open(f)):
        if d:
            kinds[d["kind"]] = d
for k in ("ConfigMap", "Secret", "Service", "StatefulSet", "Kustomization",
          "PodDisruptionBudget", "ServiceMonitor"):
    assert k in kinds, k
pdb = kinds["PodDisruptionBudget"]["spec"]
assert pdb["maxUnavailable"] == 1
assert pdb["selector"]["matchLabels"] == {"app.kubernetes.io/name": "xsell"}
sm = kinds["ServiceMonitor"]["spec"]
assert sm["selector"]["matchLabels"] == kinds["Service"]["metadata"]["labels"]
assert sm["endpoints"][0]["port"] == kinds["Service"]["spec"]["ports"][0]["name"]
assert sm["endpoints"][0]["path"] == "/metrics"
sts = kinds["StatefulSet"]["spec"]
pod = sts["template"]
c = pod["spec"]["containers"][0]
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
assert sts["volumeClaimTemplates"][0]["metadata"]["name"] == "state"
assert any(m["mountPath"] == "/var/lib/xsell" for m in c["volumeMounts"])
open(tmp + "/cm.conf", "w").write(kinds["ConfigMap"]["data"]["xsell.conf"])
open(tmp + "/secrets.conf", "w").write(kinds["Secret"]["stringData"]["secrets.conf"])
print("yaml: docker-compose.yml and k8s/*.yaml parse; kinds, probes, annotations, "
      "PodDisruptionBudget and ServiceMonitor selectors ok")
PY

if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize deploy/k8s >/dev/null
  echo "kubectl kustomize deploy/k8s: ok"
else
  echo "kubectl: not installed, kustomize build skipped"
fi

# The pod loads the ConfigMap's file then the Secret's (statefulset.yaml):
# checked together, as the worker reads them.
"$BIN/xsell" config --check deploy/xsell.conf >/dev/null
"$BIN/xsell" config --check "$tmp/cm.conf" "$tmp/secrets.conf" >/dev/null
echo "xsell config --check: deploy/xsell.conf, ConfigMap and Secret files ok"

if command -v systemd-analyze >/dev/null 2>&1; then
  sed "s#/usr/local/bin/xsell-worker#$(realpath "$BIN")/xsell-worker#" \
    deploy/xsell-worker.service >"$tmp/xsell-worker.service"
  out=$(systemd-analyze verify "$tmp/xsell-worker.service" 2>&1 || true)
  # Only the unit itself matters; the host may lack the xsell user.
  if echo "$out" | grep -v -e "^$" | grep -qv -i "user\|group"; then
    echo "$out" >&2
    exit 1
  fi
  echo "systemd-analyze verify xsell-worker.service: ok"
else
  echo "systemd-analyze: not installed, unit check skipped"
fi

python3 - <<'PY'
import os, re
known = {"FROM", "RUN", "COPY", "ADD", "WORKDIR", "USER", "ENV", "ARG", "EXPOSE", "VOLUME",
         "ENTRYPOINT", "CMD", "HEALTHCHECK", "LABEL", "STOPSIGNAL", "SHELL", "ONBUILD"}
lines, cur = [], ""
for raw in open("deploy/Dockerfile"):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    cur += s.rstrip("\\") + " "
    if not s.endswith("\\"):
        lines.append(cur.strip())
        cur = ""
assert not cur, "continuation at end of file"
stages, user = 0, None
for l in lines:
    ins = l.split()[0].upper()
    assert ins in known, "unknown instruction " + ins
    if ins == "FROM":
        stages += 1
        assert l.split()[1].startswith("debian:12"), "base must be Debian 12: " + l
        user = None
    if ins == "USER":
        user = l.split()[1]
    if ins == "COPY" and "--from=" not in l:
        for src in l.split()[1:-1]:
            assert os.path.exists(src), "COPY source missing: " + src
assert stages == 2 and user and not user.startswith(("0", "root")), "runtime runs as non-root"
print("Dockerfile: instructions, COPY sources, Debian 12 base, non-root user ok")
PY
echo "deploy/check.sh: all checks passed (nothing was built or started)"
