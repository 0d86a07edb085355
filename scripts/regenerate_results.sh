#!/usr/bin/env bash
# Every committed figure that names the shipped model, remade from a clean
# commit after a new model ships (docs/training.md, "Shipping a new model").
# Run from the repository root of a clean checkout with data/fer2013 unpacked
# and the training run's log in runs/$RUN/ (the curves): about an hour on 2
# cores, the soak last. Each step refuses a dirty tree; the tests
# (tests/test_provenance.py) fail until every file is redone.
#   scripts/regenerate_results.sh [BEFORE_COMMIT]
# BEFORE_COMMIT: also time the pipeline beside that commit's (--against).
set -euo pipefail

PYTHON=${PYTHON:-.venv/bin/python}
PI_PYTHON=${PI_PYTHON:-.venv-pi/bin/python}  # a Pi-like venv for the start-up figure
NAME=${NAME:-dev-2core}
RUN=${RUN:-cnn-distill-pair}
SOAK_MINUTES=${SOAK_MINUTES:-30}

step() { echo "== $(date +%H:%M:%S) $*"; }

step evaluate
"$PYTHON" -m host_training.evaluate models/emotion_int8.tflite data/fer2013 \
    --out docs/evaluation --log "runs/$RUN/log.csv"
"$PYTHON" -m host_training.evaluate models/emotion_int8.tflite data/fer2013 \
    --flip-average --out docs/evaluation/flip-average
step demo clip baseline
UPDATE_BASELINE=1 "$PYTHON" -m pytest -q tests/test_cli.py -k baseline
step benchmarks
"$PYTHON" -m benchmarks --name "$NAME"
for kind in --flip --ensemble --distance --mqtt --console --privacy --batch --profile; do
    step "benchmarks $kind"
    "$PYTHON" -m benchmarks "$kind" --name "$NAME"
done
step "benchmarks --far"
"$PYTHON" -m benchmarks --far --name "$NAME" --startup-python "$PI_PYTHON"
if [ $# -ge 1 ]; then
    step "benchmarks --against $1"
    "$PYTHON" -m benchmarks --against "$1" --name "$NAME"
fi
step tracker similarity
"$PYTHON" scripts/tracker_similarity.py --name "$NAME"
step "soak, $SOAK_MINUTES minutes"
"$PYTHON" -m benchmarks --soak "$SOAK_MINUTES" --name "$NAME"
step finished
