#!/usr/bin/env bash
# Deploys the image $IMAGE to the compose host $DEPLOY_HOST (ssh, key in $DEPLOY_SSH_KEY).
#   deploy.sh staging|production   snapshot (production), migrate, then each service and the
#                                  worker one at a time, each gated on its health check
#   deploy.sh migrate              ACTION=status|upgrade|downgrade REVISION=...
# The host holds the repository's docker-compose.yml and .env in /srv/betterworld.
set -euo pipefail
mode=${1:?staging, production or migrate}
key=$(mktemp); trap 'rm -f "$key"' EXIT
printf '%s\n' "${DEPLOY_SSH_KEY:?}" > "$key"; chmod 600 "$key"
# Compose takes the image from BETTERWORLD_IMAGE; the image's entry point is `betterworld`.
remote() {
  ssh -i "$key" -o StrictHostKeyChecking=accept-new "deploy@${DEPLOY_HOST:?}" \
    "cd /srv/betterworld && ${IMAGE:+export BETTERWORLD_IMAGE=$IMAGE && }$*"
}
healthy() { # waits up to 120 s for a compose service's health check
  for _ in $(seq 1 60); do
    [ "$(remote "docker inspect -f '{{.State.Health.Status}}' \$(docker compose ps -q $1)")" = healthy ] && return 0
    sleep 2
  done
  echo "$1 is not healthy: roll back with the previous SHA" >&2; return 1
}
case "$mode" in
  migrate)
    [ "${ACTION:-upgrade}" = status ] || remote "docker compose run --rm worker backup create --label pre-migrate"
    remote "docker compose run --rm migrate migrate ${ACTION:-upgrade}${REVISION:+ --revision $REVISION}" ;;
  staging|production)
    : "${IMAGE:?}"
    remote "docker compose pull"
    [ "$mode" = production ] && remote "docker compose run --rm worker backup create --label pre-deploy"
    remote "docker compose run --rm migrate migrate upgrade"
    for service in agent content guardrail mission worker envoy; do
      remote "docker compose up -d --no-deps $service"
      healthy "$service"
    done
    remote "curl -fsS http://127.0.0.1:8080/health" ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
