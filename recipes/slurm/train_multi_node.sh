#!/bin/bash
# Train a recipe with SLURM on one or more nodes, one task per GPU, surviving time limits and
# preemption: the job checkpoints before it is stopped and requeues itself.
#
#   sbatch --nodes=4 recipes/slurm/train_multi_node.sh recipes/kinetics400/slowfast_r50_4x16x1_256e.yaml
#   sbatch --nodes=2 --time=4:00:00 recipes/slurm/train_multi_node.sh RECIPE.yaml --batch_size=8   # overrides
#
# How a 256-epoch run gets through 4-hour slots:
#   - 90 s before the time limit SLURM sends SIGUSR1 to every task (--signal=USR1@90). Each rank
#     finishes its step, they save checkpoints/iter_<N> together and exit with status 75.
#   - This script sees 75 and requeues the job (--requeue); the next start resumes exactly where
#     it stopped (--resume_from=auto: the newest intact checkpoint, model, optimizer, RNG, data order).
#   - scancel or a preemption sends SIGTERM instead: the same checkpoint, exit 130, no requeue by
#     this script (SLURM requeues preempted jobs itself when PreemptMode=REQUEUE).
#   - Any other failure exits with its own status and is not requeued.
#
# Ranks are started by srun directly (not by `accelerate launch`/torchrun, which start ranks in
# sessions of their own, die on SIGUSR1 and exit 1/143 after SIGTERM), so every rank gets the signal
# and its exit status reaches this script; Accelerate reads RANK, WORLD_SIZE, LOCAL_RANK and
# MASTER_ADDR. One task per node works too if the task is `accel-slowfast launch` (torchrun's
# arguments, passing the signals on and exiting 130/75):
#   srun --ntasks-per-node=1 accel-slowfast launch --nnodes=$SLURM_NNODES --nproc_per_node=8 \
#       --rdzv_backend=c10d --rdzv_endpoint=$MASTER_ADDR:29500 train.py RECIPE.yaml --resume_from=auto
# Mixed precision and the like come from the recipe (or ACCELERATE_MIXED_PRECISION=bf16).
#SBATCH --job-name=slowfast
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8          # one task per GPU
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8            # data-loader workers of one rank
#SBATCH --time=24:00:00
#SBATCH --signal=USR1@90             # checkpoint-and-requeue notice, 90 s before the time limit
#SBATCH --requeue
#SBATCH --open-mode=append           # a requeued job appends to the same log
#SBATCH --output=slurm-%x-%j.out
set -uo pipefail

if [ $# -lt 1 ]; then
    echo "usage: sbatch $0 RECIPE.yaml [--key=value ...]" >&2
    exit 2
fi
EXIT_REQUEUE=75  # accel_slowfast.interrupts.EXIT_REQUEUE

MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MASTER_ADDR
export MASTER_PORT=${MASTER_PORT:-29500}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
PYTHON=${PYTHON:-python}

# Single quotes: SLURM_PROCID and friends are each task's own, read in the task's shell.
# --kill-on-bad-exit=0: all ranks exit 75 together after a SIGUSR1 checkpoint; killing the
# slower ones on the first exit would turn their 75 into a signal status and lose the requeue.
srun --kill-on-bad-exit=0 bash -c '
    export RANK=$SLURM_PROCID LOCAL_RANK=$SLURM_LOCALID WORLD_SIZE=$SLURM_NTASKS
    export LOCAL_WORLD_SIZE=${SLURM_NTASKS_PER_NODE:-$SLURM_NTASKS}
    exec "$0" train.py "$1" --resume_from=auto "${@:2}"' "$PYTHON" "$@"
status=$?

if [ "$status" -eq "$EXIT_REQUEUE" ]; then
    echo "checkpoint saved before the time limit; requeueing job $SLURM_JOB_ID" >&2
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
