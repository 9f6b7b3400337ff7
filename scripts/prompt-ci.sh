#!/usr/bin/env bash
# Prompt CI: lint the manifests a branch changes and run the eval sets of the prompts it
# changes, each candidate against the baseline on the target branch. Used by
# .github/workflows/prompts.yml and by `make eval` (docs/evals.md).
#
#   scripts/prompt-ci.sh            # lint, then eval
#   BASE_REF=origin/release scripts/prompt-ci.sh
#
# Writes $EVAL_REPORTS/<prompt>.{md,html,xml,json} and $EVAL_REPORTS/comment.md.
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
  promptctl eval "$evalset" --baseline "$baseline" --candidate "$candidate" \
    --markdown "$OUT/$prompt.md" --html "$OUT/$prompt.html" \
    --junit "$OUT/$prompt.xml" --json "$OUT/$prompt.json" \
    ${EVAL_ARGS:-} || code=$?
  if [ -f "$OUT/$prompt.md" ]; then
    cat "$OUT/$prompt.md" >> "$comment"
  else
    printf '# Eval: %s %s → %s\n\n**ERROR (exit %s)**: see the job log.\n\n<!-- promptctl-eval prompt=%s -->\n' \
      "$prompt" "$baseline" "$candidate" "$code" "$prompt" >> "$comment"
  fi
  [ "$code" -gt "$worst" ] && worst=$code
done <<< "$plan"
exit "$worst"
