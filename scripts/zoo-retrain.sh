#!/usr/bin/env bash
# Rebuild the micro zoo from scratch (hours of CPU; resumable): corpora, train-extra venv,
# training of xs and its warm legs, s grown from the finished xs, m grown from s, then ship.
# docs/zoo.md explains it.
#   WORK=/work/zoo-work bash scripts/zoo-retrain.sh [corpora|venv|train|ship]   (default: all)
# Each corpus is skipped when its manifest exists; training resumes from WORK/micro-*/last.pt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${WORK:-/work/zoo-work}
PY=${PY:-$ROOT/.venv/bin/python}
TRAIN_PY=$WORK/venv-train/bin/python
C=$WORK/corpus
export PYTHONPATH=$ROOT/python

corpus() {
  local out=$1; shift
  [ -f "$C/$out/manifest.jsonl" ] && return 0
  echo "==> $(date +%T) corpus $out"
  "$PY" -m whisper_cascade.cli zoo corpus "$C/$out" --workers 2 "$@"
}

corpora() {
  local variants="Alex Alicia Andrea Denis Diogo Henrique Hugo Jacky Marco Mario Michael Nguyen
    Storm adam anika announcer antonio aunty belinda boris caleb ed fast grandma grandpa gustave
    iven iven2 iven3 iven4 kaukovalta marcelo michel miguel norbert pablo pedro quincy rob sandro
    victor zac"
  local voices=() base v
  for base in en en-us en-gb-x-rp en-gb-scotland en-029 en-gb-x-gbclan en-gb-x-gbcwmd; do
    for v in $variants; do voices+=("$base+$v"); done
  done
  corpus heldout --n 600 --seed 2 --split heldout
  corpus heldout-b --n 1200 --seed 4 --split heldout
  corpus heldout-unseen --n 300 --seed 3 --split heldout --voices en-us-nyc+m7 en-gb+f5 \
    en-us-nyc+klatt en-gb+john en-us+annie en-gb-x-rp+m6 en-029+Andy en-gb-scotland+klatt3
  corpus train --n 24000 --seed 1 --variants 3
  corpus train-swap --n 9000 --seed 21 --variants 3 --swap-slots 0.5
  corpus train-voices --n 9000 --seed 31 --variants 3 --voices "${voices[@]}"
  corpus train-swap2 --n 9000 --seed 22 --variants 3 --swap-slots 0.5
  corpus train-voices2 --n 9000 --seed 32 --variants 3 --voices "${voices[@]}"
  corpus calib --n 400 --seed 11 --split heldout
  corpus calib-u1 --n 300 --seed 13 --split heldout --voices en-gb+m8 en-us+klatt2 en+steph \
    en-gb-x-rp+paul en-029+linda en-us-nyc+david en-gb-scotland+edward en-gb-x-gbcwmd+Mike
  corpus calib-u2 --n 300 --seed 14 --split heldout --voices en-gb-x-gbclan+klatt4 en-us+robert \
    en+Gene en-029+max en-gb+Lee en-gb-x-rp+shelby en-gb-scotland+travis en-us-nyc+benjamin
}

venv() {
  [ -x "$TRAIN_PY" ] || python3 -m venv "$WORK/venv-train"
  "$WORK/venv-train/bin/pip" install -q torch openai-whisper jiwer soundfile soxr numpy
}

train() {
  local extra=()
  for name in train-swap train-voices train-swap2 train-voices2; do
    extra+=(--extra-train "$C/$name/manifest.jsonl")
  done
  # xs from scratch (zoo.train SIZES), then (sessions 11 and 12) restarted twice late in its
  # cosine with the four extra corpora; the second leg ships its last step.
  "$TRAIN_PY" -m whisper_cascade.zoo.train --size xs --work "$WORK" --threads 2 \
    "${extra[@]}" --extra-fraction 0.5
  leg xs scratch 8000 11000
  leg xs leg1 9000 12000 --promote-last
  # Session 14: s grows from the finished xs, session 13: m from the finished s (Recipe
  # grow_from); each ships its last step.
  grown s
  grown m
}

# A grown size: its recipe widens the finished smaller size and trains it; the last step
# ships. WORK/grown-SIZE.done marks it finished.
grown() {
  local size=$1
  [ -f "$WORK/grown-$size.done" ] && return 0
  local args=(--size "$size" --work "$WORK" --threads 2 "${extra[@]}" --extra-fraction 0.5)
  "$TRAIN_PY" -m whisper_cascade.zoo.train "${args[@]}"
  "$TRAIN_PY" -m whisper_cascade.zoo.train "${args[@]}" --promote-last
  touch "$WORK/grown-$size.done"
}

# A warm leg: the size's folder moves to WORK/micro-SIZE-TAG (and its log to
# WORK/train-SIZE-TAG.csv), and the leg starts from that folder's best checkpoint as step INIT
# of the cosine and trains to STEPS (resumes like any run). With --promote-last the leg's
# last checkpoint becomes the one shipped. WORK/leg-SIZE-TAG.done marks a finished leg.
leg() {
  local size=$1 tag=$2 init=$3 steps=$4 promote=${5:-}
  [ -f "$WORK/leg-$size-$tag.done" ] && return 0
  if [ ! -d "$WORK/micro-$size-$tag" ]; then
    mv "$WORK/micro-$size" "$WORK/micro-$size-$tag"
    mv "$WORK/train-$size.csv" "$WORK/train-$size-$tag.csv"
  fi
  local args=(--size "$size" --work "$WORK" --threads 2 "${extra[@]}" --extra-fraction 0.5
    --init "$WORK/micro-$size-$tag/best.npz" --init-step "$init" --steps "$steps")
  "$TRAIN_PY" -m whisper_cascade.zoo.train "${args[@]}"
  if [ -n "$promote" ]; then
    "$TRAIN_PY" -m whisper_cascade.zoo.train "${args[@]}" --promote-last
  fi
  touch "$WORK/leg-$size-$tag.done"
}

ship() {
  "$PY" -m whisper_cascade.zoo.ship --work "$WORK" --out python/whisper_cascade/data/models \
    --sizes xs s m --eval-manifest "$C/heldout/manifest.jsonl" --ladder micro=xs,s,m
}

case "${1:-all}" in
  corpora) corpora ;;
  venv) venv ;;
  train) train ;;
  ship) ship ;;
  all) corpora; venv; train; ship ;;
  *) echo "usage: $0 [corpora|venv|train|ship|all]" >&2; exit 2 ;;
esac
