#!/usr/bin/env bash
# Every measurement of a model card, for one weights file, written as JSON into OUT_DIR.
#
#   bash tools/evaluate_weights.sh pretrained/canocaps_procedural_cpu.pt runs/eval_shipped
#
# Network metrics on the test split twice (view 2 = view 1's points moved, as in
# training's validation; and view 2 = an independent sample of the surface, like two
# scans; procedural and real meshes), then the heads: registration on the real-mesh test
# set in four conditions and on 140 procedural pairs (with the no-ICP ablation, beside
# Open3D FPFH+RANSAC+ICP and PCA+ICP in the same run), reconstruction, classification,
# capsule/part agreement, stability (procedural and real meshes). Each step prints its table; existing
# JSON files are kept (delete them to measure again). About an hour on one loaded core (the
# real-mesh registration benchmark alone: 12 minutes).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: bash tools/evaluate_weights.sh WEIGHTS OUT_DIR" >&2
    exit 2
fi
weights=$1
out=$2
if [ ! -f "$weights" ]; then
    echo "evaluate_weights: error: $weights: no such weights file" >&2
    exit 2
fi
py=${PYTHON:-python}
mkdir -p "$out"
step() {  # step NAME.json COMMAND...: run COMMAND unless NAME.json exists
    local file=$out/$1
    shift
    if [ -e "$file" ]; then
        echo "== $file exists, kept"
    else
        echo "== $file"
        "$@"
    fi
}
step test_metrics.json $py -m canocaps eval equivariance --weights "$weights" --split test \
    --json-out "$out/test_metrics.json"
step test_metrics_resampled.json $py -m canocaps eval equivariance --weights "$weights" --split test \
    --resample-views --json-out "$out/test_metrics_resampled.json"
step realmesh_metrics_resampled.json $py -m canocaps eval equivariance --weights "$weights" --data realmesh \
    --split test --resample-views --json-out "$out/realmesh_metrics_resampled.json"
step registration_realmesh.json $py tools/bench_registration.py --data realmesh --num-points 2048 \
    --conditions clean,noisy,partial,sparse --ablation --weights "$weights" --json "$out/registration_realmesh.json"
step registration.json $py tools/bench_registration.py --limit 140 --ablation --weights "$weights" \
    --json "$out/registration.json"
for task in reconstruction classification parts; do
    step $task.json $py -m canocaps eval $task --weights "$weights" --json-out "$out/$task.json"
done
step stability.json $py -m canocaps eval stability --num-shapes 50 --weights "$weights" --json-out "$out/stability.json"
step stability_realmesh.json $py -m canocaps eval stability --data realmesh --num-shapes 48 --weights "$weights" \
    --json-out "$out/stability_realmesh.json"
