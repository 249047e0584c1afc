#!/usr/bin/env bash
# Chaos figures for bench/README.md: the whole install against the fake API server with faults
# injected, one seed per run (odd seeds: 10 % of writes fail; even seeds: 5 % of reads and writes),
# then a plain re-run. Prints runs, completed, stopped at a named step, hangs (a run past its
# deadline or a test that never finished), re-runs converged, and the faults injected.
#   bash bench/chaos.sh [FIRST-LAST [RATE]]   (default 1-16; RATE: that fraction of all requests)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-1-16}"
export CHAOS_RATE="${2:-}"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
start=$(date +%s)
CHAOS_SEEDS="$seeds" CHAOS_REPORT="$report" timeout 1800 \
  python -m pytest tests/installer/test_chaos.py -q -p no:randomly -n 2 -o addopts="" \
  | tail -3 || true
wall=$(( $(date +%s) - start ))
python - "$report" "$seeds" "$wall" <<'PY'
import collections, json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
low, _, high = sys.argv[2].partition("-")
runs = int(high or low) - int(low) + 1
faults = collections.Counter()
for r in rows:
    faults.update(r["faults"])
rows = [r for r in rows if "completed" in r]  # a run that never finished has no outcome
done = [r for r in rows if r["completed"]]
named = [r for r in rows if not r["completed"]]
print(f"seeds {sys.argv[2]}: runs {runs}, completed {len(done)}, "
      f"stopped at a named step {len(named)}, hangs {runs - len(rows)}, "
      f"re-run converged {sum(bool(r.get('converged')) for r in rows)}/{runs}")
print(f"faulted run: median {sorted(r['seconds'] for r in rows)[len(rows)//2]} s, "
      f"longest {max(r['seconds'] for r in rows)} s; requests retried {sum(r['retried'] for r in rows)}")
print("faults injected:", ", ".join(f"{k} {v}" for k, v in sorted(faults.items())))
for r in named:
    print(f"  seed {r['seed']}: {r['stopped_at'][:150]}")
print(f"wall {sys.argv[3]} s on -n 2")
PY
