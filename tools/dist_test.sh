#!/usr/bin/env bash
# Distributed evaluation with torchrun (as mmdetection's dist_test.sh):
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS_PER_NODE [test.py options]
# Environment (defaults in brackets): NNODES [1], NODE_RANK [0],
# MASTER_ADDR [127.0.0.1], PORT [29500], PYTHON [python]; see
# tools/dist_train.sh and docs/training_at_scale.md for a 2-node example.
# Each process evaluates its shard of the test set; the metrics are computed
# once, over all of it (mmengine collects the results).
set -e
if [ $# -lt 3 ]; then
    echo "usage: bash $0 CONFIG CHECKPOINT GPUS_PER_NODE [test.py options]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
