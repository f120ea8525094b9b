#!/usr/bin/env bash
# Install what the benchmarks need (espeak-ng, pesq), then run them all; each prints
# its ratio against a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if ! command -v espeak-ng >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
fi
.venv/bin/python -c "import pesq, matplotlib" 2>/dev/null \
    || .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[bench]' 2>&1 | grep -v "is ignored" >&2 || true
benches="call_setup isolation capacity codec_settings quality transfer ibb"
if [ "$(id -u)" = 0 ]; then
    benches="$benches remote_worker"  # network namespaces
fi
for bench in $benches; do
    .venv/bin/python -m "bench.$bench"
done
