#!/usr/bin/env bash
# Wheels that benchmarks/gpu_check.py needs on a GPU machine that has CUDA torch, numpy,
# scipy, pandas and h5py but neither anndata nor internet: anndata and what it imports
# beyond those (zarr and its codecs), and pandas 2 (anndata 0.12 refuses pandas 3; pip
# takes it from the folder only where the machine's pandas does not fit). Run here (with a package index), then carry the
# folder to the machine and install from it:
#
#   bash benchmarks/gpu_wheels.sh [FOLDER] [PYTHON_VERSIONS...]   # default benchmarks/wheels 3.11 3.12
#   pip install --no-index --find-links benchmarks/wheels anndata    # on the GPU machine
set -euo pipefail
out=${1:-benchmarks/wheels}
shift || true
versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=(3.11 3.12)
mkdir -p "$out"
for version in "${versions[@]}"; do
  pip download --quiet --only-binary=:all: --dest "$out" \
    --python-version "$version" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    anndata "pandas>=2.1,<3"
done
# the machine has these (with its CUDA build of torch): do not carry them
rm -f "$out"/numpy-* "$out"/scipy-* "$out"/h5py-*
du -sh "$out"
ls "$out"
