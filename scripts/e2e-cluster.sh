#!/usr/bin/env bash
# A real-cluster end-to-end run (docs/install.md): kind, the image, the chart, a healthy
# rollout and an automatic rollback. Needs docker, kind, kubectl and helm; not part of
# `make test` (which runs the same scenarios against the Kubernetes API emulator).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "e2e-cluster needs $tool on PATH" >&2; exit 2; }
done

CLUSTER=${CLUSTER:-prompt-rollouts-e2e}
NS=prompts
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE=prompt-rollouts:$VERSION

cleanup() { kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; }
trap cleanup EXIT

kind create cluster --name "$CLUSTER" --wait 120s
docker build --build-arg VERSION="$VERSION" -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

kubectl create namespace "$NS"
# Prometheus scraping the server every second (no operator needed).
kubectl apply -n "$NS" -f - <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: prometheus}
data:
  prometheus.yml: |
    global: {scrape_interval: 1s, evaluation_interval: 1s}
    scrape_configs:
      - job_name: server
        static_configs: [{targets: ["prompt-rollouts-server:8000"]}]
YAML
kubectl run prometheus -n "$NS" --image=prom/prometheus:v2.53.0 --port=9090 \
  --overrides='{"spec":{"volumes":[{"name":"c","configMap":{"name":"prometheus"}}],"containers":[{"name":"prometheus","image":"prom/prometheus:v2.53.0","args":["--config.file=/etc/p/prometheus.yml"],"volumeMounts":[{"name":"c","mountPath":"/etc/p"}]}]}}'
kubectl expose pod prometheus -n "$NS" --port=9090
kubectl run fake-model -n "$NS" --image="$IMAGE" --port=9000 --command -- \
  promptctl fake-model --host 0.0.0.0 --port 9000
kubectl expose pod fake-model -n "$NS" --port=9000

kubectl apply --server-side -f charts/prompt-rollouts/crds/
helm install prompt-rollouts charts/prompt-rollouts -n "$NS" --wait --timeout 5m \
  --set image.tag="$VERSION" --set examples.enabled=true \
  --set model.baseUrl="http://fake-model.$NS.svc:9000/v1" \
  --set controller.prometheusUrl="http://prometheus.$NS.svc:9090"
helm test prompt-rollouts -n "$NS"

kubectl port-forward -n "$NS" svc/prompt-rollouts-server 18000:8000 >/dev/null &
kubectl port-forward -n "$NS" pod/fake-model 19000:9000 >/dev/null &
sleep 3
load() {
  while true; do
    for u in $(seq 1 20); do
      curl -s -o /dev/null localhost:18000/v1/answers -H 'content-type: application/json' \
        -d "{\"prompt\":\"policy-qa\",\"question\":\"How long does shipping take?\",\"user\":\"u$u\"}"
    done
    sleep 0.5
  done
}
load & LOAD=$!
trap 'kill $LOAD 2>/dev/null; cleanup' EXIT

# A fast healthy rollout of 1.1.0.
sed -e 's/pause: 5m/pause: 20s/' prompts/policy-qa-1.1.0.yaml | kubectl apply -n "$NS" -f -
kubectl wait -n "$NS" --for=condition=Promoted pver/policy-qa-1-1-0 --timeout=5m

# A failing canary: 1.2.0 on its own model, which the fake model breaks.
sed -e 's/1\.1\.0/1.2.0/; s/policy-qa-1-1-0/policy-qa-1-2-0/; s/name: gpt-4o-mini/name: gpt-4.1-nano/' \
  prompts/policy-qa-1.1.0.yaml | kubectl apply -n "$NS" -f -
kubectl wait -n "$NS" --for=jsonpath='{.status.phase}'=Progressing pver/policy-qa-1-2-0 --timeout=2m
start=$(date +%s)
curl -s -X POST localhost:19000/admin/faults -H 'content-type: application/json' \
  -d '{"status": 503, "models": ["gpt-4.1-nano"]}' >/dev/null
kubectl wait -n "$NS" --for=jsonpath='{.status.phase}'=RolledBack pver/policy-qa-1-2-0 --timeout=2m
echo "time-to-rollback: $(( $(date +%s) - start )) s"
kubectl get pver -n "$NS"
