CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

CREATE TABLE tokens (
    token_id TEXT NOT NULL, 
    account_id TEXT NOT NULL, 
    name TEXT DEFAULT '' NOT NULL, 
    created_at FLOAT NOT NULL, 
    revoked_at FLOAT, 
    key_sealed BLOB NOT NULL, 
    PRIMARY KEY (token_id)
);

CREATE TABLE delegates (
    delegate_id TEXT NOT NULL, 
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
    connected_at FLOAT, 
    last_heartbeat FLOAT, 
    PRIMARY KEY (delegate_id), 
    UNIQUE (account_id, name, instance_id)
);

CREATE TABLE tasks (
    task_id TEXT NOT NULL, 
    account_id TEXT, 
    type TEXT NOT NULL, 
    selectors TEXT NOT NULL, 
    params TEXT NOT NULL, 
    secrets_sealed BLOB, 
    context TEXT NOT NULL, 
    timeout FLOAT NOT NULL, 
    status TEXT NOT NULL, 
    created_at FLOAT NOT NULL, 
    assigned_at FLOAT, 
    started_at FLOAT, 
    ended_at FLOAT, 
    delegate_id TEXT, 
    instance_id TEXT, 
    session_id TEXT, 
    last_seq INTEGER DEFAULT '0' NOT NULL, 
    output TEXT, 
    error TEXT, 
    waiting_reason TEXT, 
    log_bytes INTEGER DEFAULT '0' NOT NULL, 
    truncated INTEGER DEFAULT '0' NOT NULL, 
    abort_reason TEXT, 
    execution_id TEXT, 
    step_id TEXT, 
    late_result INTEGER DEFAULT '0' NOT NULL, 
    PRIMARY KEY (task_id)
);

CREATE INDEX tasks_status ON tasks (status, created_at);

CREATE TABLE entries (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
    task_id TEXT NOT NULL, 
    seq INTEGER, 
    kind TEXT NOT NULL, 
    unit TEXT, 
    data TEXT NOT NULL
);

CREATE INDEX entries_task ON entries (task_id, id);

CREATE TABLE units (
    task_id TEXT NOT NULL, 
    unit TEXT NOT NULL, 
    status TEXT NOT NULL, 
    started_at TEXT, 
    ended_at TEXT, 
    first_entry INTEGER NOT NULL, 
    PRIMARY KEY (task_id, unit)
);

CREATE TABLE executions (
    execution_id TEXT NOT NULL, 
    account_id TEXT, 
    name TEXT NOT NULL, 
    service_key TEXT NOT NULL, 
    spec TEXT NOT NULL, 
    secrets_sealed BLOB, 
    status TEXT NOT NULL, 
    phase TEXT NOT NULL, 
    runs TEXT NOT NULL, 
    "plan" TEXT NOT NULL, 
    waiting_reason TEXT, 
    error TEXT, 
    abort_requested INTEGER DEFAULT '0' NOT NULL, 
    rollback_requested INTEGER DEFAULT '0' NOT NULL, 
    created_at FLOAT NOT NULL, 
    started_at FLOAT, 
    ended_at FLOAT, 
    PRIMARY KEY (execution_id)
);

CREATE TABLE meta (
    name TEXT NOT NULL, 
    value BLOB NOT NULL, 
    PRIMARY KEY (name)
);

CREATE TABLE idempotency (
    account_key TEXT NOT NULL, 
    kind TEXT NOT NULL, 
    idem_key TEXT NOT NULL, 
    body_digest TEXT NOT NULL, 
    resource_id TEXT NOT NULL, 
    answer TEXT NOT NULL, 
    created_at FLOAT NOT NULL, 
    PRIMARY KEY (account_key, kind, idem_key)
);

CREATE TABLE files (
    account_id TEXT NOT NULL, 
    path TEXT NOT NULL, 
    content BLOB NOT NULL, 
    size INTEGER NOT NULL, 
    sha256 TEXT NOT NULL, 
    updated_at FLOAT NOT NULL, 
    PRIMARY KEY (account_id, path)
);

CREATE TABLE seen_jwts (
    jti TEXT NOT NULL, 
    forget_after FLOAT NOT NULL, 
    PRIMARY KEY (jti)
);

CREATE INDEX seen_jwts_forget ON seen_jwts (forget_after);

INSERT INTO alembic_version (version_num) VALUES ('0001') RETURNING version_num;

-- Running upgrade 0001 -> 0002

CREATE TABLE tracked_services (
    account_id TEXT NOT NULL, 
    region TEXT NOT NULL, 
    cluster TEXT NOT NULL, 
    service TEXT NOT NULL, 
    reach TEXT NOT NULL, 
    secrets_sealed BLOB, 
    deployed_td TEXT NOT NULL, 
    deployed_image TEXT, 
    deployed_status TEXT NOT NULL, 
    deployed_at FLOAT NOT NULL, 
    task_id TEXT, 
    execution_id TEXT, 
    state TEXT DEFAULT 'pending' NOT NULL, 
    reason TEXT, 
    service_td TEXT, 
    desired INTEGER, 
    running INTEGER, 
    synced_at FLOAT, 
    PRIMARY KEY (account_id, region, cluster, service)
);

CREATE TABLE instances (
    account_id TEXT NOT NULL, 
    region TEXT NOT NULL, 
    cluster TEXT NOT NULL, 
    service TEXT NOT NULL, 
    task_arn TEXT NOT NULL, 
    revision TEXT NOT NULL, 
    data TEXT NOT NULL, 
    PRIMARY KEY (account_id, region, cluster, service, task_arn)
);

CREATE TABLE instance_changes (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
    at FLOAT NOT NULL, 
    account_id TEXT NOT NULL, 
    region TEXT NOT NULL, 
    cluster TEXT NOT NULL, 
    service TEXT NOT NULL, 
    kind TEXT NOT NULL, 
    detail TEXT NOT NULL
);

CREATE INDEX instance_changes_service ON instance_changes (account_id, region, cluster, service, id);

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

-- Running upgrade 0002 -> 0003

CREATE TABLE tf_states (
    account_id TEXT NOT NULL, 
    provisioner TEXT NOT NULL, 
    workspace TEXT NOT NULL, 
    state_sealed BLOB, 
    updated_at FLOAT, 
    lock_id TEXT, 
    lock_info TEXT, 
    lock_task_id TEXT, 
    locked_at FLOAT, 
    PRIMARY KEY (account_id, provisioner, workspace)
);

CREATE TABLE tf_records (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
    account_id TEXT NOT NULL, 
    provisioner TEXT NOT NULL, 
    workspace TEXT NOT NULL, 
    kind TEXT NOT NULL, 
    task_id TEXT NOT NULL, 
    created_at FLOAT NOT NULL, 
    body_sealed BLOB NOT NULL
);

CREATE INDEX tf_records_by_key ON tf_records (account_id, provisioner, workspace, kind, id);

UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002';

-- Running upgrade 0003 -> 0004

CREATE TABLE definitions (
    account_id TEXT NOT NULL, 
    kind TEXT NOT NULL, 
    name TEXT NOT NULL, 
    revision INTEGER NOT NULL, 
    spec TEXT NOT NULL, 
    sha256 TEXT NOT NULL, 
    deleted INTEGER DEFAULT '0' NOT NULL, 
    created_at FLOAT NOT NULL, 
    PRIMARY KEY (account_id, kind, name, revision)
);

CREATE TABLE execution_definitions (
    execution_id TEXT NOT NULL, 
    account_id TEXT NOT NULL, 
    kind TEXT NOT NULL, 
    name TEXT NOT NULL, 
    revision INTEGER NOT NULL, 
    PRIMARY KEY (execution_id, kind, name)
);

CREATE INDEX execution_definitions_by_name ON execution_definitions (account_id, kind, name);

CREATE TABLE execution_inputs (
    execution_id TEXT NOT NULL, 
    effective TEXT NOT NULL, 
    PRIMARY KEY (execution_id)
);

UPDATE alembic_version SET version_num='0004' WHERE alembic_version.version_num = '0003';

-- Running upgrade 0004 -> 0005

CREATE TABLE replicas (
    replica_id TEXT NOT NULL, 
    hostname TEXT NOT NULL, 
    pid INTEGER NOT NULL, 
    started_at FLOAT NOT NULL, 
    heartbeat_at FLOAT NOT NULL, 
    PRIMARY KEY (replica_id)
);

CREATE TABLE timers (
    name TEXT NOT NULL, 
    owner TEXT NOT NULL, 
    until FLOAT NOT NULL, 
    PRIMARY KEY (name)
);

CREATE TABLE console_state (
    kind TEXT NOT NULL, 
    "key" TEXT NOT NULL, 
    value TEXT NOT NULL, 
    expires_at FLOAT NOT NULL, 
    PRIMARY KEY (kind, "key")
);

ALTER TABLE delegates ADD COLUMN session_id TEXT;

ALTER TABLE delegates ADD COLUMN replica_id TEXT;

CREATE INDEX delegates_by_replica ON delegates (replica_id);

UPDATE alembic_version SET version_num='0005' WHERE alembic_version.version_num = '0004';

