// Function names that matter to routing: those that make a SELECT a write, and session-level advisory locks.

// prettier-ignore
export const DEFAULT_WRITE_FUNCTIONS: readonly string[] = Object.freeze([
  'nextval', 'setval', 'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared', 'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared',
  'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared', 'pg_advisory_unlock',
  'pg_advisory_unlock_shared', 'pg_advisory_unlock_all', 'txid_current', 'pg_current_xact_id', 'pg_notify',
  'set_config', 'lo_create', 'lo_creat', 'lo_import', 'lo_export', 'lo_unlink', 'lo_open', 'lo_write', 'lo_put',
  'lo_truncate', 'lo_from_bytea', 'pg_logical_emit_message', 'pg_switch_wal', 'pg_create_restore_point',
  'pg_reload_conf', 'pg_cancel_backend', 'pg_terminate_backend',
  // Not writes, but they read what this session's nextval drew, which only the primary ran.
  'currval', 'lastval',
]);

// prettier-ignore
export const SESSION_ADVISORY = new Set([
  'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
]);
