#!/usr/bin/env bash
# Build and push the three images to a stack's registry.
#
#   REGISTRY=$(pulumi stack output registryUrl -s aws) TAG=v1 scripts/build-images.sh
#
# REGISTRY  registry prefix (required): the stack output `registryUrl`
# TAG       image tag (default: latest); set the stack's `imageTag` to the same value
# PLATFORM  target platform (default: linux/amd64, the nodes' architecture)
#
# Log in first: aws ecr get-login-password | docker login --username AWS --password-stdin <host>,
# gcloud auth configure-docker <region>-docker.pkg.dev, or ibmcloud cr login.
set -euo pipefail

: "${REGISTRY:?set REGISTRY to the stack output registryUrl}"
TAG="${TAG:-latest}"
PLATFORM="${PLATFORM:-linux/amd64}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# repository name : Dockerfile (build context is always the repository root)
IMAGES=(
  "mlflow-server:mlflow-server/Dockerfile"
  "trainer:trainer/Dockerfile"
  "serving:serving/Dockerfile"
)

missing=()
for entry in "${IMAGES[@]}"; do
  [[ -f "${ROOT}/${entry#*:}" ]] || missing+=("${entry#*:}")
done
if ((${#missing[@]})); then
  echo "missing Dockerfile(s): ${missing[*]}" >&2
  exit 1
fi

for entry in "${IMAGES[@]}"; do
  name="${entry%%:*}"
  dockerfile="${entry#*:}"
  ref="${REGISTRY%/}/${name}:${TAG}"
  echo "==> ${ref} (${dockerfile})"
  docker build --platform "${PLATFORM}" -f "${ROOT}/${dockerfile}" -t "${ref}" "${ROOT}"
  docker push "${ref}"
done
