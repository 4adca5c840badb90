#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU (as mmdetection's):
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# e.g. 16 GPUs on 2 nodes, the paper's schedule:
#   GPUS=16 bash tools/slurm_train.sh gpu bombo configs/bombo/bombo_r50_pafpn_voc.py \
#       work_dirs/bombo_r50_pafpn_voc_16x --auto-scale-lr --scale-schedule
# Environment (defaults in brackets):
#   GPUS [8]            total number of tasks (= GPUs)
#   GPUS_PER_NODE [8]   tasks and GPUs per node
#   CPUS_PER_TASK [5]   CPU cores per task (dataloader workers)
#   SRUN_ARGS []        more srun options, e.g. "--quotatype=auto"
#   PYTHON [python]     the interpreter
# train.py reads the world size from SLURM_NTASKS (--launcher slurm).
set -x
if [ $# -lt 4 ]; then
    echo "usage: bash $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
PY_ARGS=("${@:5}")

# SRUN_ARGS is split into words on purpose (several srun options)
# shellcheck disable=SC2086
PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$(dirname "$0")/train.py" "${CONFIG}" \
    --work-dir="${WORK_DIR}" --launcher="slurm" "${PY_ARGS[@]}"
