#!/usr/bin/env bash
# Everything that needs a GPU, as one short run (about 10 minutes on an H100/H200), its output in
# $OUT (or ./gpu_session_out): the training-step table in true FLOPs, where the step's time goes,
# the data path (CPU decoding vs NVDEC: clips/s and CPU cores, bench/gpu_decode.py), and
# multigrid vs the standard schedule on R50 (bench/multigrid.py, a few minutes more; not run on
# a GPU yet).
#
#     bash bench/gpu_session.sh               # on the GPU machine, from the repository root
#     bash bench/gpu_session.sh --tiny        # the same steps, CPU-sized: what the tests run
#     bash bench/gpu_session.sh decode multigrid   # only these steps (throughput, throughput_b32,
#                                                  # profile, multigrid, decode): a second call that
#                                                  # fits a per-command time limit
#
# A GPU machine without this package's dependencies gets them from ./.whl (wheels downloaded on a
# machine with an index: torch stays the machine's own); see docs/PERFORMANCE.md for the list.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_session_out}"
mkdir -p "$out"
tiny=()
if [ "${1:-}" = "--tiny" ]; then tiny=(--tiny); shift; fi
steps=("$@")  # none named: all of them
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
# torchcodec (decode step) loads the system's FFmpeg; a machine without one gets PyAV's bundled
# FFmpeg instead, under the library names torchcodec looks for.
if ! python3 -c "import torchcodec.decoders" 2>/dev/null; then
    avlibs=$(python3 -c "import av, pathlib; print(pathlib.Path(av.__file__).resolve().parents[1] / 'av.libs')")
    mkdir -p /tmp/ffmpeg_libs
    for lib in "$avlibs"/lib{avcodec,avdevice,avfilter,avformat,avutil,swresample,swscale}-*.so.*; do
        name=$(basename "$lib")
        major=$(echo "$name" | sed -E 's/.*\.so\.([0-9]+).*/\1/')
        ln -sf "$lib" "/tmp/ffmpeg_libs/${name%%-*}.so.$major"
    done
    export LD_LIBRARY_PATH="/tmp/ffmpeg_libs:$avlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$out/device.txt"

step() {  # name, command...: run it, keep its output, go on if it fails (the next steps still run)
    local name=$1
    shift
    if [ ${#steps[@]} -gt 0 ] && [[ " ${steps[*]} " != *" $name "* ]]; then return 0; fi
    echo "== $name: $*"
    "$@" 2>&1 | tee "$out/$name.txt" || echo "== $name failed (exit ${PIPESTATUS[0]})"
}

if [ ${#tiny[@]} -eq 0 ]; then
    step throughput python3 bench/gpu_throughput.py --rows fp32 bf16 bf16+channels_last --steps 15
    step throughput_b32 python3 bench/gpu_throughput.py --batch-size 32 --warmup 3 --steps 10 \
        --rows fp32 bf16+channels_last
    step profile python3 bench/gpu_profile.py --batch-size 32
    step multigrid python3 bench/multigrid.py --model slowfast_r50_4x16 --clip-len 32 --crop-size 224 \
        --batch-size 8 --epochs 4 --lr-steps 2 --num-workers 8
else
    step throughput python3 bench/gpu_throughput.py --tiny
    step profile python3 bench/gpu_profile.py --tiny
    step multigrid python3 bench/multigrid.py --tiny
fi
if python3 -c "import torchcodec.decoders" 2>/dev/null; then
    step decode python3 bench/gpu_decode.py "${tiny[@]}"
else
    echo "== decode skipped: torchcodec does not load (pip install torchcodec, or its wheel in .whl)"
fi
echo "outputs in $out"
