//! The SQLite databases under `$ETL_HOME` (the catalog, the run history, the footer cache),
//! opened one way: write-ahead log, waiting for other processes' locks.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

use crate::error::{Result, ResultExt};

/// How long a statement waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens (creating) the database at `path` with its `schema`; `durable` makes every commit
/// reach the disk. Two processes creating a database at once can find it locked while the other
/// switches it to WAL, which SQLite reports at once instead of waiting: the setup is retried
/// for as long as a statement would wait.
pub fn open(path: &Path, schema: &str, durable: bool) -> Result<Connection> {
    let connection = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let started = Instant::now();
    loop {
        let setup = (|| {
            connection.pragma_update(None, "journal_mode", "WAL")?;
            if durable {
                connection.pragma_update(None, "synchronous", "FULL")?;
            }
            // One transaction for the whole schema: each statement on its own would be a commit,
            // and a fresh `$ETL_HOME` paid ~40 fsyncs (0.3 s) before a run read anything.
            let transaction = connection.unchecked_transaction()?;
            transaction.execute_batch(schema)?;
            transaction.commit()
        })();
        match setup {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => {
                other?;
                return Ok(connection);
            }
        }
    }
}
