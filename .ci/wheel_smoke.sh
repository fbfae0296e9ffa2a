#!/usr/bin/env bash
# The package as a user installs it: build the wheel, install it into a fresh virtualenv outside the
# checkout (no system site-packages), then, from a folder outside the checkout, train one epoch of
# the synthetic default with the installed command and check that it wrote a checkpoint.
#
#     .ci/wheel_smoke.sh            # what .ci/run calls after the tests; prints how long it took
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d /tmp/accel_slowfast_wheel.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
start=$SECONDS

# Built from a copy of the checkout's files (tracked and new, not ignored), so that setuptools'
# build/ folder, which a later build would take stale files from, stays out of the checkout.
mkdir "$scratch/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf -) |
    tar -xf - -C "$scratch/src"
pip wheel --no-deps -q -w "$scratch/dist" "$scratch/src"
python -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q "$scratch"/dist/accel_slowfast-*.whl
echo "wheel smoke: built and installed in $((SECONDS - start)) s"

cd "$scratch"  # no checkout here: the recipe comes from the wheel, by its README path
"$scratch/venv/bin/accel-slowfast" --help > /dev/null
OMP_NUM_THREADS=1 ACCEL_SLOWFAST_CACHE="$scratch/cache" "$scratch/venv/bin/accel-slowfast" train \
    recipes/synthetic/slowfast_tiny.yaml --work_dir=run --max_epochs=1 --num_workers=0
test -f run/checkpoints/epoch_1/meta.json || { echo "wheel smoke: no checkpoint in $scratch/run" >&2; exit 1; }
echo "wheel smoke: passed in $((SECONDS - start)) s"
