#!/bin/bash
# Train a recipe on several nodes with SLURM: one `accelerate launch` per node, 8 GPUs each.
#
#   sbatch --nodes=2 recipes/slurm/train_multi_node.sh recipes/kinetics400/slowfast_r50_4x16x1_256e.yaml
#   sbatch --nodes=4 recipes/slurm/train_multi_node.sh RECIPE.yaml --batch_size=8    # extra args: recipe overrides
#
# Resuming after a preemption or time limit: resubmit with --resume_from=auto (the newest
# complete checkpoint in work_dir; the wandb run continues too).
#SBATCH --job-name=slowfast
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1          # one launcher per node; it starts one process per GPU
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=72:00:00
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: sbatch $0 RECIPE.yaml [--key=value ...]" >&2
    exit 2
fi

GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MAIN_HOST=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MAIN_PORT=${MAIN_PORT:-29500}
NUM_PROCESSES=$((SLURM_NNODES * GPUS_PER_NODE))

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

# $SLURM_NODEID is evaluated on each node (single quotes keep it for srun's shell).
srun --kill-on-bad-exit=1 bash -c 'accelerate launch \
    --config_file recipes/accelerate_configs/multi_node.yaml \
    --num_machines "$SLURM_NNODES" \
    --num_processes '"$NUM_PROCESSES"' \
    --machine_rank "$SLURM_NODEID" \
    --main_process_ip '"$MAIN_HOST"' \
    --main_process_port '"$MAIN_PORT"' \
    train.py "$@"' _ "$@"
