//! API keys: who may call the server, and which tables each caller may read.
//!
//! A key is a name, the table patterns it may read (`curated.*`, `raw.orders`), an optional
//! expiry and a secret shown once when it is created. Only the SHA-256 of the secret is kept,
//! in `$ETL_HOME/keys.sqlite`. A fast hash is the right one here: a secret is 256 random bits,
//! not a password a person chose, so there is no dictionary to slow down, and a slow hash
//! (argon2) would cost every request tens of milliseconds of CPU for nothing. Every request
//! looks its key up again, so a key revoked by `etl serve keys revoke` in another process is
//! refused from the next request on.

use std::path::Path;
use std::sync::Mutex;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::TableName;
use crate::error::{Error, Result};
use crate::runs::report::RunReport;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY,
    -- SHA-256 of the secret, hex: the secret itself is never stored.
    secret_sha256 TEXT NOT NULL UNIQUE,
    tables TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
-- The server's own secrets (what signs its cursors), made once per ETL_HOME: every server of
-- it, and every restart, takes the cursors the others issued.
CREATE TABLE IF NOT EXISTS server_secrets (
    name TEXT PRIMARY KEY,
    secret BLOB NOT NULL
);
";

/// What every secret starts with, so that secret scanners and people recognise one.
const SECRET_PREFIX: &str = "etl_";

/// A key as stored (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    pub name: String,
    /// The table patterns, as given.
    pub tables: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
}

impl Key {
    /// Whether the key may read `table`.
    pub fn may_read(&self, table: &TableName) -> bool {
        let name = table.to_string();
        self.tables.iter().any(|pattern| glob::Pattern::new(pattern).is_ok_and(|p| p.matches(&name)))
    }

    /// Whether the key may see a run: one that read or wrote a table it may read (a key for
    /// every table sees every run, failed ones that wrote nothing included).
    pub fn may_see(&self, run: &RunReport) -> bool {
        let tables = run.targets.iter().map(|t| t.table.as_str()).chain(run.sources.iter().map(|s| s.table.as_str()));
        self.tables.iter().any(|pattern| pattern == "*")
            || tables.filter_map(|t| t.parse::<TableName>().ok()).any(|t| self.may_read(&t))
    }

    /// A run's report as the key may see it: the sources, targets, checks and bills of tables
    /// outside its patterns left out (a key learns nothing of those, their locations included).
    /// Its error and warnings, and the samples of its `sql` checks, are told only to a key for
    /// every table: they may quote values of any table the run's queries read, which its
    /// report does not list.
    pub fn redacted(&self, mut run: RunReport) -> RunReport {
        if self.tables.iter().any(|pattern| pattern == "*") {
            return run;
        }
        let readable = |table: &str| table.parse::<TableName>().is_ok_and(|t| self.may_read(&t));
        if run.error.is_some() {
            run.error = Some(HIDDEN_ERROR.to_string());
        }
        run.warnings.clear();
        if !run.sources.iter().all(|s| readable(&s.table)) {
            run.quarantine = None;
        }
        run.sources.retain(|s| readable(&s.table));
        run.targets.retain(|t| readable(&t.table));
        run.checks.retain(|c| readable(&c.target));
        // A `sql` check's samples are rows of whatever its query reads, any table.
        for check in run.checks.iter_mut().filter(|c| c.rule == "sql") {
            check.samples.clear();
        }
        run.athena.targets.retain(|t| readable(&t.table));
        run
    }

    fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|expiry| expiry <= now)
    }
}

/// What a key for some tables reads in place of a failed run's error.
const HIDDEN_ERROR: &str = "the run failed; its error may quote tables outside this key's, and is shown to keys for every table (and by `etl runs`)";

/// A new key and its secret, which exists nowhere else once this is printed.
#[derive(Debug, Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: Key,
    pub secret: String,
}

#[derive(Debug)]
pub struct KeyStore {
    connection: Mutex<Connection>,
}

impl KeyStore {
    pub fn open(home: &Path) -> Result<Self> {
        std::fs::create_dir_all(home).map_err(|e| Error::runtime(format!("creating {}: {e}", home.display())))?;
        let path = home.join("keys.sqlite");
        // The cursors' signing secret is in it: readable by its owner alone (SQLite gives its
        // journal the database's permissions).
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Error::runtime(format!("creating {}: {e}", path.display())))?;
        }
        let connection = crate::sqlite::open(&path, SCHEMA, true)?;
        Ok(KeyStore { connection: Mutex::new(connection) })
    }

    /// The secret that signs the server's cursors, made the first time it is asked for.
    pub fn cursor_secret(&self) -> Result<Vec<u8>> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| Error::runtime(format!("no randomness for a secret: {e}")))?;
        self.with(|c| {
            c.execute("INSERT OR IGNORE INTO server_secrets (name, secret) VALUES ('cursor', ?1)", [&fresh[..]])?;
            Ok(c.query_row("SELECT secret FROM server_secrets WHERE name = 'cursor'", [], |r| r.get(0))?)
        })
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        work(&self.connection.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Creates a key; `tables` are comma-separated patterns (`curated.*,raw.orders`).
    pub fn create(&self, name: &str, tables: &str, expires_in: Option<std::time::Duration>) -> Result<CreatedKey> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(Error::usage(format!("--name '{name}': a key name is letters, digits, '_' and '-'")));
        }
        let patterns = parse_patterns(tables)?;
        let now = Utc::now();
        let expires_at = match expires_in {
            Some(duration) => {
                let duration = chrono::Duration::from_std(duration)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .ok_or_else(|| Error::usage("--expires: too far in the future"))?;
                Some(stamp(duration))
            }
            None => None,
        };
        let secret = new_secret()?;
        let key = Key { name: name.to_string(), tables: patterns, created_at: stamp(now), expires_at };
        self.with(|c| {
            let inserted = c.execute(
                "INSERT INTO api_keys (name, secret_sha256, tables, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO NOTHING",
                params![key.name, digest(&secret), key.tables.join(","), key.created_at, key.expires_at],
            )?;
            if inserted == 0 {
                return Err(Error::usage(format!(
                    "a key named '{name}' exists already (revoke it first, or choose another name)"
                )));
            }
            Ok(())
        })?;
        Ok(CreatedKey { key, secret })
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<Key>> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT name, tables, created_at, expires_at FROM api_keys ORDER BY name")?;
            let keys = statement.query_map([], key_of_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(keys)
        })
    }

    /// Removes a key: its secret stops working at once.
    pub fn revoke(&self, name: &str) -> Result<()> {
        let removed = self.with(|c| Ok(c.execute("DELETE FROM api_keys WHERE name = ?1", [name])?))?;
        if removed == 0 {
            return Err(Error::not_found(format!("no key named '{name}'")));
        }
        Ok(())
    }

    /// The key a secret belongs to, if it exists and has not expired.
    pub fn verify(&self, secret: &str) -> Result<Option<Key>> {
        let key = self.with(|c| {
            Ok(c.query_row(
                "SELECT name, tables, created_at, expires_at FROM api_keys WHERE secret_sha256 = ?1",
                [digest(secret)],
                key_of_row,
            )
            .optional()?)
        })?;
        Ok(key.filter(|k| !k.expired(Utc::now())))
    }
}

fn key_of_row(row: &rusqlite::Row) -> rusqlite::Result<Key> {
    let tables: String = row.get(1)?;
    Ok(Key {
        name: row.get(0)?,
        tables: tables.split(',').map(str::to_string).collect(),
        created_at: row.get(2)?,
        expires_at: row.get(3)?,
    })
}

/// `curated.*,raw.orders` -> the patterns, each checked.
fn parse_patterns(text: &str) -> Result<Vec<String>> {
    // Table names are lower case, as Glue keeps them: `CUR.T1` would match nothing.
    let patterns: Vec<String> = text.split(',').map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect();
    if patterns.is_empty() {
        return Err(Error::usage("--tables: give at least one pattern, like 'curated.*'"));
    }
    for pattern in &patterns {
        glob::Pattern::new(pattern).map_err(|e| Error::usage(format!("--tables '{pattern}': {e}")))?;
        if pattern != "*" && !pattern.contains('.') {
            return Err(Error::usage(format!(
                "--tables '{pattern}': a pattern names DATABASE.TABLE, like 'curated.*' (or '*' for every table)"
            )));
        }
    }
    Ok(patterns)
}

fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::runtime(format!("no randomness for a secret: {e}")))?;
    Ok(format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn stamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_stored_hashed_and_verified() {
        let home = tempfile::tempdir().unwrap();
        let store = KeyStore::open(home.path()).unwrap();
        let created = store.create("app", "curated.*, raw.orders", None).unwrap();
        assert!(created.secret.starts_with(SECRET_PREFIX));
        let raw = std::fs::read(home.path().join("keys.sqlite")).unwrap();
        assert!(!raw.windows(created.secret.len()).any(|w| w == created.secret.as_bytes()));
        let key = store.verify(&created.secret).unwrap().expect("a valid key");
        assert!(key.may_read(&"curated.orders".parse().unwrap()));
        assert!(key.may_read(&"raw.orders".parse().unwrap()));
        assert!(!key.may_read(&"raw.customers".parse().unwrap()));
        assert!(store.verify("etl_wrong").unwrap().is_none());
        assert!(store.create("app", "*", None).is_err(), "names are unique");
        store.revoke("app").unwrap();
        assert!(store.verify(&created.secret).unwrap().is_none());
        assert_eq!(store.revoke("app").unwrap_err().kind(), crate::error::ErrorKind::NotFound);
    }

    #[test]
    fn expired_keys_are_refused() {
        let home = tempfile::tempdir().unwrap();
        let store = KeyStore::open(home.path()).unwrap();
        let created = store.create("old", "*", Some(std::time::Duration::ZERO)).unwrap();
        assert!(store.verify(&created.secret).unwrap().is_none());
    }

    #[test]
    fn bad_names_and_patterns_are_usage_errors() {
        let home = tempfile::tempdir().unwrap();
        let store = KeyStore::open(home.path()).unwrap();
        assert_eq!(store.create("a b", "*", None).unwrap_err().kind().exit_code(), 2);
        assert_eq!(store.create("a", "", None).unwrap_err().kind().exit_code(), 2);
        assert_eq!(store.create("a", "curated", None).unwrap_err().kind().exit_code(), 2);
        assert_eq!(store.create("a", "curated.[", None).unwrap_err().kind().exit_code(), 2);
    }
}
