#!/usr/bin/env bash
# After a rung of the micro zoo changes: recalibrate the presets, then rerun every zoo bench
# and update bench/README.md (about 50 min on 2 cores; nothing else may run meanwhile, or the
# times lie). Needs the corpora of scripts/zoo-retrain.sh.
#   WORK=/work/zoo-work OUT=/work/zoo-work/post bash scripts/zoo-bench.sh
# QUICK=1 skips the beam and flash-attention benches (about 20 of the minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${WORK:-/work/zoo-work}
OUT=${OUT:-$WORK/post}
PY=${PY:-$ROOT/.venv/bin/python}
C=$WORK/corpus
M=python/whisper_cascade/data/models
export PYTHONPATH=$ROOT/python
mkdir -p "$OUT"
step() { echo "==> $(date +%T) $*"; }
BENCH=(--manifest "$C/heldout/manifest.jsonl" --manifest "$C/heldout-unseen/manifest.jsonl")

step calibrate
"$PY" -m whisper_cascade.zoo.calibrate --manifest "$C/calib/manifest.jsonl" \
  --manifest "$C/calib-u1/manifest.jsonl" --manifest "$C/calib-u2/manifest.jsonl" \
  --models-dir "$M" --save-table "$OUT/calib-table.json" --out "$M/calibration.json" \
  --source "calibration corpora held out from the bench sets: 400 utterances of the training voices (seed 11) + 2 × 300 of 16 voices that neither training nor the bench's unseen set uses (seeds 13, 14)" \
  | tee "$OUT/calibrate.txt"
step bench_zoo
"$PY" bench/bench_zoo.py --models-dir "$M" --manifest "$C/heldout/manifest.jsonl" \
  --manifest "$C/heldout-b/manifest.jsonl" --unseen "$C/heldout-unseen/manifest.jsonl" \
  --ladder-only --update-readme | tee "$OUT/zoo.txt"
step bench_weights
"$PY" bench/bench_weights.py --ladder micro --models-dir "$M" --fit "$C/calib/manifest.jsonl" \
  "${BENCH[@]}" --update-readme | tee "$OUT/weights.txt"
step bench_cascade
"$PY" bench/bench_cascade.py --ladder micro --models-dir "$M" "${BENCH[@]}" --n 300 \
  --preset accurate --json "$OUT/cascade-accurate.json" --quiet | tee "$OUT/cascade-accurate.txt"
"$PY" bench/bench_cascade.py --ladder micro --models-dir "$M" "${BENCH[@]}" --n 300 \
  --preset balanced --json "$OUT/cascade-balanced.json" --update-readme --quiet \
  | tee "$OUT/cascade-balanced.txt"
step bench_learned
"$PY" bench/bench_learned.py --ladder micro --models-dir "$M" "${BENCH[@]}" \
  --json "$OUT/learned.json" --update-readme --quiet | tee "$OUT/learned.txt"
"$PY" bench/bench_learned.py --ladder micro --models-dir "$M" "${BENCH[@]}" --unknown-names \
  --json "$OUT/learned-unknown.json" --update-readme --quiet | tee "$OUT/learned-unknown.txt"
if [ "${QUICK:-0}" = 1 ]; then step done; exit 0; fi
step bench_beam
"$PY" bench/bench_beam.py --models-dir "$M" "${BENCH[@]}" --n 150 --json "$OUT/beam.json" \
  --update-readme | tee "$OUT/beam.txt"
step bench_flash_attn
"$PY" bench/bench_flash_attn.py --models-dir "$M" --manifest "$C/heldout/manifest.jsonl" \
  --n 300 --update-readme | tee "$OUT/flash.txt"
step done
