#!/bin/bash
# Runs once, on the primary's first start (docker-entrypoint-initdb.d): a replication role, one physical slot per
# replica, and a pg_hba line letting that role stream from any host on the compose network.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v repl_user="${REPLICATION_USER:-replicator}" -v repl_pw="$REPLICATION_PASSWORD" <<'EOSQL'
CREATE ROLE :"repl_user" WITH REPLICATION LOGIN PASSWORD :'repl_pw';
SELECT pg_create_physical_replication_slot(slot) FROM unnest(ARRAY['replica_ams', 'replica_syd']) AS slot;
EOSQL

echo "host replication ${REPLICATION_USER:-replicator} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
