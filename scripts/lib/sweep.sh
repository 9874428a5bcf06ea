#!/usr/bin/env bash
# The one implementation behind scripts/<method>/sweep.sh: one base-to-new run per sweep point, each in its own output
# root, so that every point is a separate run whatever the runner's folder naming; compare.py --plot tradeoff reads
# the points back (each root holds sweep_point.json naming its method, series and value).
#   sweep.sh METHOD DATASET SERIES VALUE "KEY VALUE ..." [SERIES VALUE "KEY VALUE ..." ...]
# Environment: SWEEP_ROOT (default ./output/sweep), SEEDS (default "1"), SERIES (only the series named here, e.g.
# "lambda"), EXTRA_OPTS (appended to every point before the point's own options), plus everything base2new.sh reads.
set -euo pipefail
method=$1 dataset=$2
shift 2
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
script="$here/../$method/base2new.sh"
[ -f "$script" ] || { echo "error: no scripts/$method/base2new.sh; pass a method folder name (e.g. capt)" >&2; exit 2; }
[ $(($# % 3)) -eq 0 ] || { echo "error: sweep points come in threes: SERIES VALUE \"KEY VALUE ...\"" >&2; exit 2; }
root=${SWEEP_ROOT:-./output/sweep}
base_opts=${EXTRA_OPTS:-}
while [ $# -gt 0 ]; do
  series=$1 value=$2 opts=$3
  shift 3
  if [ -n "${SERIES:-}" ] && [[ " $SERIES " != *" $series "* ]]; then continue; fi
  out="$root/$method/${series}_${value}"
  if [ -z "${DRY_RUN:-}" ]; then
    mkdir -p "$out"
    printf '{"method": "%s", "series": "%s", "value": "%s", "opts": "%s"}\n' \
      "$(echo "$method" | tr '[:lower:]' '[:upper:]')" "$series" "$value" "$opts" > "$out/sweep_point.json"
  fi
  for seed in ${SEEDS:-1}; do
    echo "== $method $series=$value seed $seed -> $out"
    OUTPUT="$out" EXTRA_OPTS="$base_opts $opts" bash "$script" "$dataset" "$seed"
  done
done
echo "done; plot: python tools/compare.py $root --plot tradeoff"
