//! What a raw scan running on an executor read and set apart, carried back to the client:
//! each partition leaves one file of lines in the scan's spool folder, and the client replays
//! them into the run's own rejects (counted, quarantined, or the run's error, as locally) and
//! read counts once the query is over.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::location::Location;
use crate::source::rejects::BadRecord;
use crate::source::scan::RawTable;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    /// Rows read from a file to its end.
    Read { file: String, rows: u64 },
    /// A record set apart, with the header line of its CSV file for the replayable copy.
    Rejected {
        record: BadRecord,
        header: Option<String>,
        #[serde(default)]
        on_line: u32,
    },
}

/// On an executor, after a partition of a scan is read: leaves what it read and set apart.
/// A scan with no spool (run locally) has nothing to leave.
pub fn leave(table: &RawTable) -> Result<()> {
    let Some(spool) = &table.spool else {
        return Ok(());
    };
    let mut text = Vec::new();
    let read = table.stats.take().into_iter().map(|(file, rows)| Line::Read { file: file.to_string(), rows });
    let rejected = table.rejects.take_spooled().into_iter().map(|record| {
        let header = record.header.as_deref().map(str::to_string);
        Line::Rejected { on_line: record.on_line, record, header }
    });
    for line in read.chain(rejected) {
        serde_json::to_writer(&mut text, &line)?;
        text.push(b'\n');
    }
    let file = spool.join(&format!("{}.jsonl", unique_name()?));
    tokio::runtime::Handle::current().block_on(spool.put(file.prefix(), Bytes::from(text)))
}

/// In the client, once the query is over: what every partition left, into the table's own
/// rejects and read counts.
pub async fn replay(spools: &[(Arc<RawTable>, Location)]) -> Result<()> {
    for (table, spool) in spools {
        let mut rejected = Vec::new();
        for object in spool.list().await? {
            let bytes = spool.get_bytes(&object.location).await?;
            for (number, line) in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
                let line: Line = serde_json::from_slice(line).map_err(|e| {
                    Error::runtime(format!("{} line {}: {e}", spool.display(&object.location), number + 1))
                })?;
                match line {
                    Line::Read { file, rows } => {
                        let path = Path::parse(&file).map_err(|e| Error::runtime(format!("{file}: {e}")))?;
                        table.stats.record(&path, rows);
                    }
                    Line::Rejected { mut record, header, on_line } => {
                        record.header = header.map(Arc::from);
                        record.on_line = on_line;
                        rejected.push(record);
                    }
                }
            }
            spool.delete(&object.location).await?;
        }
        // The partitions' files come in the order of their random names, and one source file's
        // records may be in several: replayed by file and line, the quarantine's copies and the
        // first bad record under `fail` are those of a local run.
        rejected.sort_by(|a, b| (&a.file, a.line, a.on_line).cmp(&(&b.file, b.line, b.on_line)));
        for record in rejected {
            table.rejects.reject(record)?;
        }
    }
    Ok(())
}

/// A name no other partition's file has.
fn unique_name() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| Error::runtime(format!("no random bytes: {e}")))?;
    Ok(hex::encode(bytes))
}
