-- The schema of manager/db.py before migrations (commit cca05c3), without seen_jwts and late_result:
-- a file made by that release.

CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    revoked_at REAL,
    key_sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS delegates (
    delegate_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    tags TEXT NOT NULL,
    version TEXT NOT NULL,
    hostname TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    task_types TEXT NOT NULL,
    state TEXT NOT NULL,
    connected_at REAL,
    last_heartbeat REAL,
    UNIQUE (account_id, name, instance_id)
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    account_id TEXT,
    type TEXT NOT NULL,
    selectors TEXT NOT NULL,
    params TEXT NOT NULL,
    secrets_sealed BLOB,
    context TEXT NOT NULL,
    timeout REAL NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    assigned_at REAL,
    started_at REAL,
    ended_at REAL,
    delegate_id TEXT,
    instance_id TEXT,
    session_id TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    output TEXT,
    error TEXT,
    waiting_reason TEXT,
    log_bytes INTEGER NOT NULL DEFAULT 0,
    truncated INTEGER NOT NULL DEFAULT 0,
    abort_reason TEXT,
    execution_id TEXT,
    step_id TEXT
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, created_at);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    seq INTEGER,
    kind TEXT NOT NULL,
    unit TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_task ON entries (task_id, id);
CREATE TABLE IF NOT EXISTS units (
    task_id TEXT NOT NULL,
    unit TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    first_entry INTEGER NOT NULL,
    PRIMARY KEY (task_id, unit)
);
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY,
    account_id TEXT,
    name TEXT NOT NULL,
    service_key TEXT NOT NULL,
    spec TEXT NOT NULL,
    secrets_sealed BLOB,
    status TEXT NOT NULL,
    phase TEXT NOT NULL,
    runs TEXT NOT NULL,
    plan TEXT NOT NULL,
    waiting_reason TEXT,
    error TEXT,
    abort_requested INTEGER NOT NULL DEFAULT 0,
    rollback_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    account_key TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    body_digest TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (account_key, kind, idem_key)
);
CREATE TABLE IF NOT EXISTS files (
    account_id TEXT NOT NULL,
    path TEXT NOT NULL,
    content BLOB NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (account_id, path)
);

