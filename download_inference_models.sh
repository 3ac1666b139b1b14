#!/usr/bin/env bash
# Download what inference.py needs into weights/ (or $GHOSTV2_WEIGHTS_DIR / --weights_dir DIR).
# Resumable: run it again after an interruption; files already present are skipped.
set -euo pipefail
cd "$(dirname "$0")"
exec python download_weights.py --set inference "$@"
