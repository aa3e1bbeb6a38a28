#!/usr/bin/env bash
# Installs (Debian packages) and starts the PostgreSQL and Redis servers the
# test suite runs against, then prints the URLs to use, as shell assignments:
#   TEST_POSTGRES_URL=postgresql://ecollect:ecollect@127.0.0.1:5432/postgres
#   TEST_REDIS_URL=redis://127.0.0.1:6379/0
# Idempotent: already installed and running servers are reused.
set -euo pipefail
log() { echo "$*" >&2; }
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else log "ERROR: se necesita root (o sudo) para instalar PostgreSQL y Redis."; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive

need=()
# The client (psql, pg_ctlcluster) may be present without a server.
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "${#need[@]}" -gt 0 ]; then
  log "Instalando ${need[*]} desde los paquetes de Debian..."
  $SUDO apt-get update -qq >&2 || true
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# PostgreSQL: the distribution's default cluster, started without systemd.
version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
if [ -z "$version" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  log "Creando el clúster de PostgreSQL $version..."
  $SUDO pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h 2>/dev/null | awk '{print $4}' | grep -q online; then
  log "Arrancando PostgreSQL $version..."
  $SUDO pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk 'NR==1 {print $3}')
for _ in $(seq 1 30); do
  $SUDO runuser -u postgres -- psql -p "$port" -tAc "select 1" >/dev/null 2>&1 && break
  sleep 1
done
$SUDO runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qtAc \
  "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='ecollect') THEN CREATE ROLE ecollect LOGIN CREATEDB PASSWORD 'ecollect'; END IF; END \$\$;" >&2

# Redis: a private, non-persistent instance.
redis_port=${TEST_REDIS_PORT:-6379}
if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
  log "Arrancando Redis en el puerto $redis_port..."
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes >&2
  for _ in $(seq 1 30); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

echo "TEST_POSTGRES_URL=postgresql://ecollect:ecollect@127.0.0.1:${port}/postgres"
echo "TEST_REDIS_URL=redis://127.0.0.1:${redis_port}/0"
