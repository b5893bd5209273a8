/**
 * The PostgreSQL store's schema, as numbered migrations, run under a transaction-scoped
 * advisory lock so that several server processes starting at once apply each one once.
 * Names are unqualified: the store's connections set `search_path` to its schema.
 *
 * `events` is range-partitioned by month on the event's own time (`at`); its key is
 * `(at, id)` (a partitioned table's unique key must hold the partition key). An endpoint's retry
 * sends the same event, same id and same time, so the key keeps each event once.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE devices (
    id text PRIMARY KEY,
    sealing_key text NOT NULL,
    signing_key text NOT NULL,
    user_name text NOT NULL,
    host_name text NOT NULL,
    enrolled_at timestamptz NOT NULL,
    revoked_at timestamptz,
    last_check_in_at timestamptz,
    last_state jsonb
  );
  CREATE INDEX devices_user ON devices (user_name);
  CREATE TABLE nonces (
    device text NOT NULL,
    nonce text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (device, nonce)
  );
  CREATE INDEX nonces_expires ON nonces (expires_at);
  CREATE TABLE events (
    at timestamptz NOT NULL,
    id text COLLATE "C" NOT NULL,
    type text NOT NULL,
    device text NOT NULL,
    user_name text,
    workspace text,
    received_at timestamptz NOT NULL,
    body json NOT NULL,
    PRIMARY KEY (at, id)
  ) PARTITION BY RANGE (at);
  CREATE INDEX events_device_at ON events (device, at);
  CREATE INDEX events_user_at ON events (user_name, at);
  CREATE INDEX events_workspace_at ON events (workspace, at);
  CREATE INDEX events_type_at ON events (type, at);
  CREATE TABLE assignments (id text PRIMARY KEY, created_at timestamptz NOT NULL, body jsonb NOT NULL);
  CREATE TABLE policy_layers (name text PRIMARY KEY, document jsonb NOT NULL, updated_at timestamptz NOT NULL);
  CREATE TABLE workspace_keys (workspace text PRIMARY KEY, sealed_data_key text NOT NULL, created_at timestamptz NOT NULL);
  CREATE TABLE users (name text PRIMARY KEY, display_name text, body jsonb NOT NULL);
  CREATE TABLE groups (name text PRIMARY KEY, description text, body jsonb NOT NULL);
  CREATE TABLE throttles (
    key text PRIMARY KEY,
    failures integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    blocked_until timestamptz NOT NULL
  );
  CREATE TABLE audit (
    id text PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail jsonb
  );
  CREATE INDEX audit_at ON audit (at, id);
  CREATE INDEX audit_actor_at ON audit (actor, at);
  CREATE TABLE store_revision (only_row integer PRIMARY KEY CHECK (only_row = 1), value bigint NOT NULL);
  INSERT INTO store_revision (only_row, value) VALUES (1, 0);
  `,
  // 2: the management console (issue 16): indexes for the endpoint table's sorts, and sessions.
  // Nothing that a check-in writes (last_check_in_at, last_state) is indexed, so a check-in's
  // update stays a HOT update; the table sorts and filters those columns by a scan (see docs).
  `
  CREATE INDEX devices_enrolled ON devices (enrolled_at, id);
  CREATE INDEX devices_host ON devices (host_name, id);
  CREATE INDEX devices_user_id ON devices (user_name, id);
  CREATE TABLE console_sessions (
    id text PRIMARY KEY,
    user_name text NOT NULL,
    display_name text,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
  );
  CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
  `,
  // 3: room for HOT updates of devices (issue 15). A check-in updates its device row
  // (last_check_in_at, last_state); an update is HOT (no new entry in the table's five indexes)
  // only when the new row version fits on the same page, which a page filled to 100% at insert
  // time does not allow: measured under the check-in bench, 39% of the updates were HOT. Half
  // of each page is kept free for them. (Applies to pages written from now on; an existing
  // deployment's full pages gain the room when rewritten, e.g. by VACUUM FULL devices.)
  `
  ALTER TABLE devices SET (fillfactor = 50);
  `,
];
