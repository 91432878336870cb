#!/usr/bin/env bash
# Checks the Helm chart, the compose stack and the alerts without a cluster (scripts/check-deploy.py).
# Its Python packages live in a private virtualenv: helm-python-sdk embeds Helm's Go SDK (no helm
# binary needed), kubernetes-validate bundles the Kubernetes schemas.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${CHORUS_TOOLS_DIR:-$HOME/.cache/chorus-tools}/deploy-venv"

if ! "$venv/bin/python" -c "import helm_python, kubernetes_validate, yaml" 2>/dev/null; then
  echo "installing helm-python-sdk, kubernetes-validate and pyyaml into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check helm-python-sdk kubernetes-validate pyyaml >&2
fi

exec "$venv/bin/python" scripts/check-deploy.py "$@"
