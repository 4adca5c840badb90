#!/usr/bin/env bash
# Distributed training with torchrun and mmengine's DDP (as mmdetection's):
#   bash tools/dist_train.sh CONFIG GPUS_PER_NODE [train.py options]
# e.g. the paper's schedule on 8 GPUs (8×(32+32) images per step):
#   bash tools/dist_train.sh configs/bombo/bombo_r50_pafpn_voc.py 8 \
#       --auto-scale-lr --scale-schedule
# Environment (defaults in brackets):
#   NNODES [1]             number of machines
#   NODE_RANK [0]          this machine's index, 0 .. NNODES-1
#   MASTER_ADDR [127.0.0.1] address of the NODE_RANK=0 machine
#   PORT [29500]           its free TCP port (the same on every node)
#   PYTHON [python]        the interpreter
# Two nodes of 8 GPUs: run on each node, with its NODE_RANK,
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 \
#       bash tools/dist_train.sh CONFIG 8 --auto-scale-lr --scale-schedule
# Without CUDA the processes run on the CPU with the gloo backend.
set -e
if [ $# -lt 2 ]; then
    echo "usage: bash $0 CONFIG GPUS_PER_NODE [train.py options]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
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
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
