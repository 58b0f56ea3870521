#!/bin/bash
# check-ecs.sh: the ECS task definitions through botocore's ParamValidator
# (RegisterTaskDefinition) and Fargate's rules, and the CloudFormation
# template's cross-references (deploycheck.py ecs).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_python yaml botocore
exec "$PYTHON3" "$TOP_SRCDIR/tests/deploy/deploycheck.py" ecs
