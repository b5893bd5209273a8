/**
 * The SQLite store's schema, as numbered migrations. `schema_version` holds the last one
 * applied; each runs in its own `BEGIN IMMEDIATE` transaction, so two processes opening one
 * file at once apply each migration once.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    sealing_key TEXT NOT NULL,
    signing_key TEXT NOT NULL,
    user_name TEXT NOT NULL,
    host_name TEXT NOT NULL,
    enrolled_at TEXT NOT NULL,
    revoked_at TEXT,
    last_check_in_at TEXT,
    last_state TEXT
  );
  CREATE INDEX devices_user ON devices (user_name);
  CREATE TABLE nonces (
    device TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (device, nonce)
  ) WITHOUT ROWID;
  CREATE INDEX nonces_expires ON nonces (expires_at);
  CREATE TABLE events (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    device TEXT NOT NULL,
    user_name TEXT,
    workspace TEXT,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL
  );
  CREATE INDEX events_at ON events (at, id);
  CREATE INDEX events_device_at ON events (device, at);
  CREATE INDEX events_user_at ON events (user_name, at);
  CREATE INDEX events_workspace_at ON events (workspace, at);
  CREATE INDEX events_type_at ON events (type, at);
  CREATE TABLE assignments (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, body TEXT NOT NULL);
  CREATE TABLE policy_layers (name TEXT PRIMARY KEY, document TEXT NOT NULL, updated_at TEXT NOT NULL);
  CREATE TABLE workspace_keys (workspace TEXT PRIMARY KEY, sealed_data_key TEXT NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE users (name TEXT PRIMARY KEY, display_name TEXT, body TEXT NOT NULL);
  CREATE TABLE groups (name TEXT PRIMARY KEY, description TEXT, body TEXT NOT NULL);
  CREATE TABLE throttles (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at TEXT NOT NULL,
    blocked_until TEXT NOT NULL
  );
  CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
  );
  CREATE INDEX audit_at ON audit (at, id);
  CREATE INDEX audit_actor_at ON audit (actor, at);
  CREATE TABLE store_revision (only INTEGER PRIMARY KEY CHECK (only = 1), value INTEGER NOT NULL);
  INSERT INTO store_revision (only, value) VALUES (1, 0);
  CREATE TABLE store_changes (revision INTEGER PRIMARY KEY, scope TEXT NOT NULL, id TEXT);
  `,
  // 2: the management console (issue 16): indexes for the endpoint table's sorts, and sessions.
  // Nothing that a check-in writes (last_check_in_at, last_state) is indexed, so check-ins pay
  // no extra index writes; the table sorts and filters those columns by a scan (see docs).
  `
  CREATE INDEX devices_enrolled ON devices (enrolled_at, id);
  CREATE INDEX devices_host ON devices (host_name, id);
  CREATE INDEX devices_user_id ON devices (user_name, id);
  CREATE TABLE console_sessions (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    display_name TEXT,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
  );
  CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
  `,
];
