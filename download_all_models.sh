#!/usr/bin/env bash
# Download every checkpoint (inference, training and dataset preprocessing) into weights/
# (or $GHOSTV2_WEIGHTS_DIR / --weights_dir DIR). Resumable; files already present are skipped.
set -euo pipefail
cd "$(dirname "$0")"
exec python download_weights.py --set all "$@"
