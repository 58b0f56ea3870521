#!/bin/bash
# check-options.sh: every option named in docker/, ecs/, systemd/ and
# docs/deploy-*.md exists in the programs' --help (deploycheck.py options).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_python yaml
exec "$PYTHON3" "$TOP_SRCDIR/tests/deploy/deploycheck.py" options
