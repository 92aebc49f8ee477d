#!/bin/bash
# Streaming replica of the official postgres image: on first start (empty volume) clone the primary with
# pg_basebackup (-R writes primary_conninfo and standby.signal), then hand over to the stock entrypoint.
set -euo pipefail
: "${PRIMARY_HOST:?PRIMARY_HOST is required}"
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD is required}"
: "${SLOT_NAME:?SLOT_NAME is required}"
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
REPLICATION_USER="${REPLICATION_USER:-replicator}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "replica ${SLOT_NAME}: waiting for ${PRIMARY_HOST}:5432"
  until pg_isready -q -h "$PRIMARY_HOST" -p 5432; do sleep 1; done
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  echo "replica ${SLOT_NAME}: pg_basebackup from ${PRIMARY_HOST} using slot ${SLOT_NAME}"
  gosu postgres env PGPASSWORD="$REPLICATION_PASSWORD" PGAPPNAME="$SLOT_NAME" \
    pg_basebackup -h "$PRIMARY_HOST" -p 5432 -U "$REPLICATION_USER" -D "$PGDATA" \
      -X stream -S "$SLOT_NAME" -R -c fast
  # Name the walreceiver after the slot, so pg_stat_replication on the primary shows which replica is which.
  echo "primary_conninfo = 'host=${PRIMARY_HOST} port=5432 user=${REPLICATION_USER} password=${REPLICATION_PASSWORD} application_name=${SLOT_NAME}'" \
    >> "$PGDATA/postgresql.auto.conf"
fi

exec docker-entrypoint.sh postgres -c hot_standby=on -c hot_standby_feedback=on
