#!/usr/bin/env bash
# The GPU check (issue 14, part 4), one short call on a machine with CUDA (under 5 minutes):
# the CUDA paths (bf16 mixed-precision training, CUDA inference against the CPU, predict with
# TIFF and OME-Zarr outputs) and the throughput benchmarks on CUDA (channels-last bf16
# training steps, predict). Results: benchmarks/results/*_cuda.json. Never part of CI.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || make install >/dev/null || exit 1
export PYTHONPATH="benchmarks${PYTHONPATH:+:$PYTHONPATH}"
rc=0
timeout 150 "$PY" benchmarks/gpu_check.py --steps 200 || rc=1
timeout 60 "$PY" benchmarks/speed.py --device cuda || rc=1
timeout 90 "$PY" benchmarks/predict_speed.py --device cuda --planes 16 --side 1024 \
    --big-gb 1 --zarr-gb 1 || rc=1
ls -l benchmarks/results/*_cuda.json
exit $rc
