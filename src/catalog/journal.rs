//! The publication journal: what makes a Glue publication all-or-nothing for readers that go
//! through `etl`, though Glue applies it in many calls (tables one by one, partitions in
//! batches) and has no transaction.
//!
//! Before its first change to Glue, a publication writes, under the root folder of every table
//! it writes, a pointer `_etl_publications/RUN.pending` naming its journal, then the journal
//! itself, `_etl_publications/RUN.json` under the first root: the whole publication. That one
//! PUT is the commit point. Then it applies the changes, and removes the pointers and the
//! journal. Reading a written table (`Catalog::table`) looks for pointers: one whose journal
//! exists names a publication that committed but may not have finished (its run was killed,
//! or is still applying it), and the reader finishes it first. Every change in it is
//! idempotent (a partition that exists is updated, one that is gone stays gone), so two
//! finishers do no harm. A pointer without a journal is a publication that never committed:
//! Glue has none of it; `etl gc` removes such pointers once their run is gone.
//!
//! What it cannot do: Athena, which reads Glue directly, sees a publication killed half-way
//! as it was left until the next `etl` command reads the table. Crawled source tables are not
//! journaled (we do not write into source folders); their changes are partition
//! registrations, applied first.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::Publication;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::layout;
use crate::location::Location;

/// What a journal holds: the publication, and where its pointers are.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    pointers: Vec<String>,
    publication: Publication,
}

/// A publication's journal and pointers, written before its first change.
#[derive(Debug, Clone)]
pub struct Journal {
    journal: Location,
    pointers: Vec<Location>,
}

impl Journal {
    /// Writes the pointers, then the journal (the commit point).
    pub async fn begin(publication: &Publication, roots: &[Location]) -> Result<Option<Journal>> {
        let (Some(run_id), Some(first)) = (&publication.run_id, roots.first()) else {
            return Ok(None);
        };
        let journal = layout::journal(first, run_id);
        let pointers: Vec<Location> = roots.iter().map(|root| layout::journal_pointer(root, run_id)).collect();
        for pointer in &pointers {
            pointer.put(pointer.prefix(), Bytes::from(journal.url())).await?;
        }
        let entry = Entry { pointers: pointers.iter().map(Location::url).collect(), publication: publication.clone() };
        journal.put(journal.prefix(), Bytes::from(serde_json::to_vec(&entry)?)).await?;
        Ok(Some(Journal { journal, pointers }))
    }

    /// After the publication is applied: the pointers go first, so a pointer never names a
    /// journal that is gone while the publication is unfinished.
    pub async fn end(&self) -> Result<()> {
        for pointer in &self.pointers {
            pointer.delete(pointer.prefix()).await?;
        }
        self.journal.delete(self.journal.prefix()).await
    }

    /// The committed publications that may be unfinished, found from a table's root.
    pub async fn committed(root: &Location) -> Result<Vec<(Publication, Journal)>> {
        let folder = layout::journal_folder(root);
        let objects: Vec<object_store::ObjectMeta> =
            match folder.store().list(Some(folder.prefix())).try_collect().await {
                Ok(objects) => objects,
                Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
                Err(e) => return Err(Error::from(e).context(format!("listing {folder}"))),
            };
        let mut found = Vec::new();
        for object in objects.iter().filter(|o| o.location.extension() == Some("pending")) {
            // A publication that ends between the listing and this read is finished.
            let named = match folder.get_bytes(&object.location).await {
                Ok(named) => named,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let journal = Location::parse(String::from_utf8_lossy(&named).trim())?;
            let text = match journal.store().get(journal.prefix()).await {
                Ok(result) => result.bytes().await.with_context(|| format!("reading {journal}"))?,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(Error::from(e).context(format!("reading {journal}"))),
            };
            let entry: Entry = serde_json::from_slice(&text)
                .map_err(|e| Error::runtime(format!("the publication journal {journal} is not readable: {e}")))?;
            let pointers = entry.pointers.iter().map(|p| Location::parse(p)).collect::<Result<Vec<_>>>()?;
            let publication = entry.publication;
            found.push((publication, Journal { journal, pointers }));
        }
        Ok(found)
    }
}
