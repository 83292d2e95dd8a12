#!/usr/bin/env bash
# Creates benchmarks/careamics/.venv with careamics 0.3.5, the reference peer, apart from
# microvae's own environment (their pins differ).
#
# careamics 0.3.5 asks for torch<2.14 and torchvision<=0.26. On the project's machines pip only
# has torch 2.14.1 / torchvision 0.29.1 on local disk (any other pair is a multi-GB CUDA
# download, and PyPI's torchvision does not import beside the local torch 2.13 CPU file), so we
# install careamics without its torch pins and its other requirements with their own ranges.
# The LVAE, its likelihoods and losses use nothing of torch that changed between these versions;
# `runner.py --check` builds the model and runs one step to prove it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/python -m pip --quiet --disable-pip-version-check"
$pip install "torch==2.14.1" "torchvision==0.29.1"
$pip install \
  "bioimageio-core>=0.9.0,<=0.11.0" "lightning>=2.2,<=2.6.6,!=2.6.2,!=2.6.3" \
  "matplotlib<=3.11.2" "microssim<=0.0.5" "numpy>=1.21,<=2.4.6" "pillow<=13.0.0" \
  "psutil<=7.2.2" "pydantic>=2.11,<=2.14.1" "pyyaml<=6.0.3,!=6.0.0" \
  "scikit-image<=0.26.0" "tifffile<=2026.3.3" "torchmetrics>0.7.0,<1.9.0" "zarr>=3.0.0,<4.0.0"
$pip install --no-deps "careamics==0.3.5"
"$venv/bin/python" -c "import careamics, torch; print('careamics', careamics.__version__, 'torch', torch.__version__)"
