#!/usr/bin/env bash
# Prompt CI: lint the manifests a branch changes and run the eval sets of the prompts it
# changes, each candidate against the baseline on the target branch. Used by
# .github/workflows/prompts.yml and by `make eval` (docs/evals.md).
#
#   scripts/prompt-ci.sh            # lint, then eval
#   BASE_REF=origin/release scripts/prompt-ci.sh
#
# Writes $EVAL_REPORTS/<prompt>.{md,html,xml,json} and $EVAL_REPORTS/comment.md.
# Evals run in-process, offline unless MODEL_BASE_URL is set. A prompt whose versions need a
# model (spec.output or spec.tools: the embedded answerer can neither write JSON nor call
# tools) is evaluated against the fake model when MODEL_BASE_URL is unset: the script starts
# `promptctl fake-model` on a free 127.0.0.1 port for it and stops it on exit.
# Exit code: the worst of the runs (0 pass, 1 regression or threshold, 2 setup error).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_REF=${BASE_REF:-origin/main}
OUT=${EVAL_REPORTS:-eval-reports}
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export QDRANT_PATH=${QDRANT_PATH:-:memory:} LOG_LEVEL=${LOG_LEVEL:-WARNING}
promptctl() { "$PY" -m promptctl.main "$@"; }

mkdir -p "$OUT"
comment="$OUT/comment.md"
fake_pid="" fake_url=""
stop_fake_model() {
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; fi
}
trap stop_fake_model EXIT
trap "exit 130" INT; trap "exit 143" TERM  # so that the EXIT trap runs on a cancel too
# Start the fake model once, on a free port; sets fake_url, or fails after 30 s.
start_fake_model() {
  local port
  port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # Not the promptctl function: $! must be the server itself, so that the trap stops it.
  "$PY" -m promptctl.main fake-model --host 127.0.0.1 --port "$port" < /dev/null > "$OUT/fake-model.log" 2>&1 &
  fake_pid=$!
  "$PY" - "http://127.0.0.1:$port/v1/models" <<'PYEOF' || { cat "$OUT/fake-model.log" >&2; return 1; }
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("the fake model did not start within 30 s")
        time.sleep(0.2)
PYEOF
  fake_url="http://127.0.0.1:$port/v1"
}
: > "$comment"
worst=0

echo "== lint: manifests changed against $BASE_REF"
base=$(git merge-base "$BASE_REF" HEAD)
mapfile -t changed < <( { git diff --name-only "$base" -- prompts; \
    git ls-files --others --exclude-standard prompts; } | grep -E '\.ya?ml$' | sort -u || true)
for file in "${changed[@]}"; do
  [ -f "$file" ] || continue
  promptctl lint "$file" || worst=2
done
# Cross-file rules (duplicate versions) need the whole folder.
promptctl lint prompts/ >/dev/null || { promptctl lint prompts/ || true; worst=2; }

echo "== eval: prompts changed against $BASE_REF"
if ! plan=$("$PY" -m promptctl.evals.plan --base "$BASE_REF" 2> "$OUT/plan-errors.txt"); then
  cat "$OUT/plan-errors.txt" >&2
  { echo "**The eval plan has problems:**"; echo; sed 's/^/- /' "$OUT/plan-errors.txt"; } >> "$comment"
  exit 2
fi
if [ -z "$plan" ]; then
  echo "No prompt or eval set changed: nothing to evaluate." | tee -a "$comment"
  exit "$worst"
fi
while IFS=$'\t' read -r prompt baseline candidate evalset; do
  echo "-- $prompt: $baseline -> $candidate ($evalset)"
  code=0
  rm -f "$OUT/$prompt".{md,html,xml,json}
  model_url=${MODEL_BASE_URL:-} note=""
  if [ -z "$model_url" ] && "$PY" -m promptctl.evals.needs_model "$prompt"; then
    if [ -z "$fake_url" ] && ! start_fake_model; then
      printf '# Eval: %s %s → %s\n\n**ERROR**: it needs a model and the fake model did not start: see the job log.\n\n<!-- promptctl-eval prompt=%s -->\n' \
        "$prompt" "$baseline" "$candidate" "$prompt" >> "$comment"
      worst=2
      continue
    fi
    model_url=$fake_url
    note="_$prompt declares spec.output or spec.tools, which need a model, and no MODEL_BASE_URL was given: evaluated against the fake model (\`promptctl fake-model\`), which checks the answers' shape, not their quality._"
    echo "   needs a model: evaluating against the fake model at $fake_url"
  fi
  MODEL_BASE_URL=$model_url "$PY" -m promptctl.main eval "$evalset" \
    --baseline "$baseline" --candidate "$candidate" \
    --markdown "$OUT/$prompt.md" --html "$OUT/$prompt.html" \
    --junit "$OUT/$prompt.xml" --json "$OUT/$prompt.json" \
    ${EVAL_ARGS:-} || code=$?
  if [ -f "$OUT/$prompt.md" ]; then
    cat "$OUT/$prompt.md" >> "$comment"
  else
    printf '# Eval: %s %s → %s\n\n**ERROR (exit %s)**: see the job log.\n\n<!-- promptctl-eval prompt=%s -->\n' \
      "$prompt" "$baseline" "$candidate" "$code" "$prompt" >> "$comment"
  fi
  [ -z "$note" ] || printf '\n%s\n' "$note" >> "$comment"
  [ "$code" -gt "$worst" ] && worst=$code
done <<< "$plan"
exit "$worst"
