//! The bridge between the catalog and DataFusion: every catalog table is `db.table` in SQL.
//!
//! A table reads the files it is made of: for a table our runs wrote, exactly the files its
//! partitions list (a snapshot: a reader never sees a half-published run); for a crawled table,
//! whatever its location holds now, as Athena reads it. Filters on partition keys prune files
//! before any is opened. Parquet goes to DataFusion's Parquet scan; CSV and JSON to our raw scan.
//! Views and tables that SQL creates live in the session's `public` schema, for the session
//! only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProvider, MemorySchemaProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, ScalarValue, Statistics};
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchemaBuilder;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;

use super::parquet_names::GlueNamesAdapterFactory;
use super::parquet_reader::NamingReaderFactory;
use super::{Catalog, Partition, Table, TableDefinition, TableName};
use crate::error::{Error, ErrorKind, Result};
use crate::location::Location;
use crate::schema::{Column, GlueType, TableSchema};
use crate::source::files::Listing;
use crate::source::format::{Compression, Format};
use crate::source::rejects::Rejects;
use crate::source::scan::{RawScanExec, RawTable, ReadStats, ScanFile};
use crate::source::text::{parse_date, parse_int, parse_timestamp};

/// The schema that holds a session's own views and tables.
pub const SESSION_SCHEMA: &str = "public";

/// A catalog table as DataFusion reads it.
#[derive(Debug)]
pub struct FileTable {
    schema: TableSchema,
    /// The data columns, then the partition keys, as queries see them (and a Parquet scan
    /// reads them: strings as views).
    arrow_schema: SchemaRef,
    raw: Arc<RawTable>,
    files: Vec<ScanFile>,
}

impl FileTable {
    /// A crawled table over the files a listing found.
    pub fn from_listing(
        definition: &TableDefinition,
        listing: &Listing,
        rejects: Arc<Rejects>,
        stats: Arc<ReadStats>,
    ) -> Result<Self> {
        let schema = definition.schema();
        let positions: Vec<Option<usize>> = schema
            .partition_keys
            .iter()
            .map(|key| listing.partition_keys.iter().position(|k| *k == key.name))
            .collect();
        let files = listing
            .files
            .iter()
            .map(|file| {
                let display = || listing.location.display(&file.path);
                let values = schema
                    .partition_keys
                    .iter()
                    .zip(&positions)
                    .map(|(key, position)| {
                        let text = position.and_then(|p| file.partition_values[p].as_deref());
                        partition_scalar(key, text).map_err(|e| e.context(display()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(ScanFile {
                    path: file.path.clone(),
                    size: file.size,
                    compression: file.compression,
                    partition_values: values,
                    rows: file.rows,
                    e_tag: file.e_tag.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(definition, listing.location.clone(), files, rejects, stats)
    }

    /// A table our runs wrote, over the files its partitions list.
    pub fn from_partitions(
        definition: &TableDefinition,
        partitions: &[Partition],
        rejects: Arc<Rejects>,
    ) -> Result<Self> {
        let schema = definition.schema();
        let location = Location::parse(&definition.location)?;
        let mut files = Vec::new();
        for partition in partitions {
            let values = schema
                .partition_keys
                .iter()
                .zip(&partition.values)
                .map(|(key, text)| partition_scalar(key, text.as_deref()))
                .collect::<Result<Vec<_>>>()?;
            for file in &partition.files {
                files.push(ScanFile {
                    path: Location::parse(&file.path)?.prefix().clone(),
                    size: file.size,
                    compression: Compression::None,
                    partition_values: values.clone(),
                    rows: Some(file.rows),
                    e_tag: None,
                });
            }
        }
        Self::new(definition, location, files, rejects, Arc::new(ReadStats::default()))
    }

    fn new(
        definition: &TableDefinition,
        location: Location,
        files: Vec<ScanFile>,
        rejects: Arc<Rejects>,
        stats: Arc<ReadStats>,
    ) -> Result<Self> {
        let schema = definition.schema();
        let raw = Arc::new(RawTable {
            location,
            format: definition.format,
            columns: schema.columns.clone(),
            partition_keys: schema.partition_keys.clone(),
            dialect: definition.csv_dialect(),
            null_values: definition.null_values(),
            rejects,
            stats,
            spool: None,
            refuse_unknown_keys: false,
        });
        let arrow_schema = match definition.format {
            Format::Parquet => {
                let data = schema.columns.iter().map(|c| as_view(c.to_arrow()));
                let keys = schema.partition_keys.iter().map(Column::to_arrow);
                Arc::new(Schema::new(data.chain(keys).collect::<Vec<_>>()))
            }
            Format::Csv | Format::Json => schema.to_arrow(),
        };
        Ok(FileTable { arrow_schema, schema, raw, files })
    }

    /// The table with JSON keys outside its schema read as bad records (see
    /// [`RawTable::refuse_unknown_keys`]).
    pub fn refusing_unknown_keys(mut self) -> Self {
        let raw = RawTable { refuse_unknown_keys: true, ..self.raw.as_ref().clone() };
        self.raw = Arc::new(raw);
        self
    }

    pub fn files(&self) -> &[ScanFile] {
        &self.files
    }

    pub fn table_schema(&self) -> &TableSchema {
        &self.schema
    }

    pub fn format(&self) -> Format {
        self.raw.format
    }

    pub fn location(&self) -> &Location {
        &self.raw.location
    }

    fn partition_names(&self) -> Vec<&str> {
        self.schema.partition_keys.iter().map(|k| k.name.as_str()).collect()
    }

    /// The files whose partition values pass the filters on partition keys.
    pub fn prune(&self, filters: &[Expr]) -> DfResult<Vec<ScanFile>> {
        let names = self.partition_names();
        let filters: Vec<Expr> =
            filters.iter().filter(|f| !names.is_empty() && expr_applicable_for_cols(&names, f)).cloned().collect();
        if filters.is_empty() {
            return Ok(self.files.clone());
        }
        let fields: Vec<Field> = self.schema.partition_keys.iter().map(Column::to_arrow).collect();
        let df_schema = DFSchema::try_from(Schema::new(fields))?;
        let filter = conjunction(filters).expect("filters are not empty");
        let filter =
            create_physical_expr(&filter, &df_schema, &ExecutionProps::new(), &PhysicalPlanningContext::default())?;
        let mut kept = Vec::new();
        for file in &self.files {
            let values = file.partition_values.iter().map(ScalarValue::to_array).collect::<DfResult<Vec<_>>>()?;
            let batch = RecordBatch::try_new(df_schema.inner().clone(), values)?;
            let passes = filter.evaluate(&batch)?.into_array(1)?;
            // A filter that is NULL for a partition's values (`p <> 'a'` where p is NULL) does not
            // hold, as in WHERE. DataFusion's `filter_partitioned_file` reads the result's value
            // bit whatever its validity, and kept such files; the filter, pushed down as exact,
            // is not applied again.
            if passes.as_boolean().is_valid(0) && passes.as_boolean().value(0) {
                kept.push(file.clone());
            }
        }
        Ok(kept)
    }
}

/// A data column as a Parquet scan hands it to queries: strings and binaries (Glue's types
/// are never Arrow's large ones) as Arrow's views, which is how DataFusion's Parquet reader
/// decodes them. A scan that must hand out `Utf8` copies every string once more, and filters,
/// hashes and comparisons of short strings are cheaper on views.
fn as_view(field: Field) -> Field {
    match field.data_type() {
        DataType::Utf8 => field.with_data_type(DataType::Utf8View),
        DataType::Binary => field.with_data_type(DataType::BinaryView),
        _ => field,
    }
}

/// Splits files into at most `n` groups of similar total size, each a run of consecutive
/// files in path order: read one group after another, the files come in path order (see
/// `transform::write_order`). A version's files retained since are in the order they had when
/// published, so reading it again gives its rows in the same order (the API pages by offset).
fn balance(mut files: Vec<ScanFile>, n: usize) -> Vec<Vec<ScanFile>> {
    let n = n.max(1).min(files.len().max(1));
    files.sort_by_cached_key(|file| crate::layout::as_published(file.path.as_ref()).into_owned());
    let total: u64 = files.iter().map(|f| f.size.max(1)).sum();
    let mut groups: Vec<Vec<ScanFile>> = vec![Vec::new(); n];
    let mut before = 0u64;
    for file in files {
        // The group whose share of the total bytes this file's middle falls in.
        let middle = before + file.size.max(1) / 2;
        let group = ((middle as u128 * n as u128) / total.max(1) as u128).min(n as u128 - 1) as usize;
        before += file.size.max(1);
        groups[group].push(file);
    }
    groups.into_iter().filter(|g| !g.is_empty()).collect()
}

/// A partition value from its folder text, as the key's type; a value of another type is an
/// error naming the key, never a silent null.
pub(crate) fn partition_scalar(key: &Column, text: Option<&str>) -> Result<ScalarValue> {
    let data_type = key.ty.to_arrow();
    let Some(text) = text else {
        return Ok(ScalarValue::try_from(&data_type)?);
    };
    let valid = match &key.ty {
        GlueType::BigInt | GlueType::Int | GlueType::SmallInt | GlueType::TinyInt => parse_int(text).is_some(),
        GlueType::Date => parse_date(text).is_some(),
        GlueType::Timestamp => parse_timestamp(text).is_some(),
        _ => true,
    };
    if !valid {
        return Err(Error::input(format!("partition value '{text}' of key {} is not a {}", key.name, key.ty)));
    }
    ScalarValue::try_from_string(text.to_string(), &data_type)
        .map_err(|e| Error::input(format!("partition value '{text}' of key {}: {e}", key.name)))
}

#[async_trait]
impl TableProvider for FileTable {
    fn schema(&self) -> SchemaRef {
        self.arrow_schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let names = self.partition_names();
        Ok(filters
            .iter()
            .map(|f| {
                if !names.is_empty() && expr_applicable_for_cols(&names, f) {
                    TableProviderFilterPushDown::Exact
                } else if self.raw.format == Format::Parquet {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.arrow_schema.fields().len()).collect(),
        };
        let files = self.prune(filters)?;
        if files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(Arc::new(self.arrow_schema.project(&projection)?))));
        }
        let statistics = statistics(&files, &self.arrow_schema);
        let groups = balance(files, state.config().target_partitions());
        match self.raw.format {
            Format::Parquet => {
                let (file_fields, partition_fields) = self.arrow_schema.fields().split_at(self.schema.columns.len());
                let table_schema = TableSchemaBuilder::new(Arc::new(Schema::new(file_fields.to_vec())))
                    .with_table_partition_cols(partition_fields.to_vec())
                    .build();
                let store = state.runtime_env().object_store(self.raw.location.store_url())?;
                let source = ParquetSource::new(table_schema)
                    .with_table_parquet_options(state.table_options().parquet.clone())
                    .with_parquet_file_reader_factory(Arc::new(NamingReaderFactory::new(
                        store,
                        self.raw.location.clone(),
                        self.schema.columns.clone(),
                    )));
                let groups = groups
                    .into_iter()
                    .map(|group| FileGroup::new(group.into_iter().map(|file| file.partitioned()).collect()))
                    .collect();
                let config = FileScanConfigBuilder::new(self.raw.location.store_url(), Arc::new(source))
                    .with_file_groups(groups)
                    .with_projection_indices(Some(projection))?
                    .with_limit(limit)
                    .with_statistics(statistics)
                    .with_expr_adapter(Some(Arc::new(GlueNamesAdapterFactory)))
                    .build();
                Ok(DataSourceExec::from_data_source(config))
            }
            Format::Csv | Format::Json => {
                let batch_size = state.config().batch_size();
                let exec =
                    RawScanExec::new(self.raw.clone(), groups, projection, limit, &self.arrow_schema, batch_size)
                        .map_err(Error::into_datafusion)?;
                Ok(Arc::new(exec))
            }
        }
    }
}

/// What the planner knows of a scan before it runs: sizes always, rows when every file's count
/// is known. Without them DataFusion cannot tell the small side of a join from the large one
/// and may build its hash table from the large one.
fn statistics(files: &[ScanFile], table_schema: &Schema) -> Statistics {
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let rows: Option<u64> = files.iter().map(|f| f.rows).sum();
    let statistics = Statistics::new_unknown(table_schema).with_total_byte_size(Precision::Inexact(bytes as usize));
    match rows {
        Some(rows) => statistics.with_num_rows(Precision::Exact(rows as usize)),
        None => statistics,
    }
}

/// The tables a session reads instead of the catalog's: a run's sources, read from the files
/// its crawl listed (and counted for its report).
pub type Overrides = HashMap<TableName, Arc<dyn TableProvider>>;

/// Each written table a session read, with the folder of each of its partitions as the
/// session first listed them. A run that publishes a table it read builds on those folders:
/// should another run publish the table in between (an append racing `etl compact`), the
/// catalog refuses the second publication, which would otherwise replace rows it never read.
#[derive(Debug, Default)]
pub struct TablesRead(Mutex<HashMap<TableName, BTreeMap<Vec<Option<String>>, String>>>);

impl TablesRead {
    fn record(&self, name: &TableName, partitions: &[Partition]) {
        let mut read = self.0.lock().unwrap_or_else(|e| e.into_inner());
        read.entry(name.clone())
            .or_insert_with(|| partitions.iter().map(|p| (p.values.clone(), p.location.clone())).collect());
    }

    /// `name`'s partition folders as the session read them; `None` if it did not read `name`.
    pub fn folders(&self, name: &TableName) -> Option<BTreeMap<Vec<Option<String>>, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }
}

/// The catalog as DataFusion's default catalog: one schema per database, plus `public`.
#[derive(Debug)]
pub struct CatalogBridge {
    catalog: Arc<dyn Catalog>,
    tables: HashMap<String, Vec<String>>,
    /// Changed after the session is built only by [`CatalogBridge::set_override`].
    overrides: Arc<RwLock<Overrides>>,
    session: Arc<MemorySchemaProvider>,
    read: Arc<TablesRead>,
}

impl CatalogBridge {
    /// Loads the list of databases and tables (DataFusion asks for names synchronously).
    pub async fn load(catalog: Arc<dyn Catalog>, overrides: Overrides) -> Result<Self> {
        let mut tables: HashMap<String, Vec<String>> = HashMap::new();
        for database in catalog.databases().await? {
            let names = catalog.tables(&database).await?;
            tables.insert(database, names);
        }
        for name in overrides.keys() {
            let names = tables.entry(name.database.clone()).or_default();
            if !names.contains(&name.table) {
                names.push(name.table.clone());
            }
        }
        Ok(CatalogBridge {
            catalog,
            tables,
            overrides: Arc::new(RwLock::new(overrides)),
            session: Arc::new(MemorySchemaProvider::new()),
            read: Arc::default(),
        })
    }

    /// From now on, `name` reads `provider` in this session: a run's checks read its staged
    /// targets under the targets' own names.
    pub fn set_override(&self, name: TableName, provider: Arc<dyn TableProvider>) {
        self.overrides.write().unwrap_or_else(|e| e.into_inner()).insert(name, provider);
    }

    pub fn tables_read(&self) -> Arc<TablesRead> {
        self.read.clone()
    }
}

impl CatalogProvider for CatalogBridge {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tables.keys().cloned().collect();
        names.push(SESSION_SCHEMA.to_string());
        names.sort();
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == SESSION_SCHEMA {
            return Some(self.session.clone());
        }
        let names = self.tables.get(name).cloned().unwrap_or_default();
        // Unknown databases resolve too, so that a missing table is reported by its full name.
        Some(Arc::new(DatabaseSchema {
            database: name.to_string(),
            names,
            catalog: self.catalog.clone(),
            overrides: self.overrides.clone(),
            read: self.read.clone(),
        }))
    }
}

#[derive(Debug)]
struct DatabaseSchema {
    database: String,
    names: Vec<String>,
    catalog: Arc<dyn Catalog>,
    overrides: Arc<RwLock<Overrides>>,
    read: Arc<TablesRead>,
}

#[async_trait]
impl SchemaProvider for DatabaseSchema {
    fn table_names(&self) -> Vec<String> {
        self.names.clone()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Ok(table_name) = TableName::new(&self.database, name) else {
            return Ok(None);
        };
        let overridden = self.overrides.read().unwrap_or_else(|e| e.into_inner()).get(&table_name).cloned();
        if let Some(provider) = overridden {
            return Ok(Some(provider));
        }
        let table = self.catalog.table(&table_name).await.map_err(Error::into_datafusion)?;
        match table {
            None => Ok(None),
            Some(table) => self.provider(&table).await.map(Some).map_err(Error::into_datafusion),
        }
    }

    fn register_table(&self, name: String, _: Arc<dyn TableProvider>) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot create {}.{name}: views and tables that SQL creates live for the run only; name them without a database",
            self.database
        )))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
            || self
                .overrides
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .any(|k| k.database == self.database && k.table == name)
    }
}

impl DatabaseSchema {
    /// The provider that reads a catalog table now (a written table's partitions, noted as read).
    async fn provider(&self, table: &Table) -> Result<Arc<dyn TableProvider>> {
        let definition = &table.definition;
        let rejects = Arc::new(Rejects::failing());
        if definition.is_written() {
            let partitions = self.catalog.partitions(&table.name).await?;
            self.read.record(&table.name, &partitions);
            return Ok(Arc::new(FileTable::from_partitions(definition, &partitions, rejects)?));
        }
        definition.require_readable(&table.name)?;
        let location = Location::parse(&definition.location)?;
        let mut listing = crate::source::files::list(&location).await?;
        let projected = definition.parameters.get("projection.enabled").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if self.catalog.kind() == "glue" && !definition.partition_keys.is_empty() && !projected {
            let partitions = self.catalog.partitions(&table.name).await?;
            registered_only(&mut listing, definition, &partitions);
        }
        Ok(Arc::new(FileTable::from_listing(definition, &listing, rejects, Arc::new(ReadStats::default()))?))
    }
}

/// A partitioned Glue table is what its registered partitions hold, as Athena reads it: a
/// folder never registered (or dropped with `ALTER TABLE … DROP PARTITION`) is not read, and a
/// file's partition values are its partition's, whatever its folder's name says.
fn registered_only(listing: &mut Listing, definition: &TableDefinition, partitions: &[Partition]) {
    let registered: Vec<(Location, &Partition)> =
        partitions.iter().filter_map(|p| Some((Location::parse(&p.location).ok()?, p))).collect();
    let location = listing.location.clone();
    listing.files.retain_mut(|file| {
        let Ok(at) = Location::parse(&location.url_of(&file.path)) else { return false };
        let Some((_, partition)) = registered.iter().find(|(folder, _)| folder.contains(&at)) else { return false };
        file.partition_values =
            partition.values.iter().map(|v| v.clone().filter(|v| v != crate::layout::HIVE_NULL_PARTITION)).collect();
        true
    });
    listing.partition_keys = definition.partition_keys.iter().map(|k| k.name.clone()).collect();
}

/// `version_of('db.table', N)`: the data of version N of a written table, as `etl table
/// history` numbers them, read from where its files are now (current, or retained for
/// rollback). A version whose files retention removed is an error saying so.
///
/// DataFusion plans table functions synchronously, and reading versions is a catalog call:
/// the call blocks its worker thread (`block_in_place`), which a multi-threaded runtime (the
/// `etl` binary's) allows; on a current-thread runtime it is refused with an error.
#[derive(Debug)]
pub struct VersionOf {
    pub catalog: Arc<dyn Catalog>,
}

impl VersionOf {
    pub const NAME: &'static str = "version_of";

    pub async fn provider(&self, name: &TableName, version: u64) -> Result<Arc<dyn TableProvider>> {
        let table = self.catalog.require(name).await?;
        let located = super::versions::locate(self.catalog.as_ref(), &table, version).await?;
        if !located.missing.is_empty() {
            let versions = self.catalog.data_versions(name).await?;
            let available = super::versions::available(self.catalog.as_ref(), &table, &versions).await?;
            located.require_files(name, &available)?;
        }
        Ok(Arc::new(FileTable::from_partitions(&located.definition, &located.readable, Arc::new(Rejects::failing()))?))
    }
}

impl datafusion::catalog::TableFunctionImpl for VersionOf {
    fn call_with_args(&self, args: datafusion::catalog::TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let usage = || {
            DataFusionError::Plan(format!(
                "{}('db.table', VERSION) takes a table name and a version number",
                Self::NAME
            ))
        };
        let [table, version] = args.exprs() else {
            return Err(usage());
        };
        let table = match table {
            Expr::Literal(
                ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)) | ScalarValue::LargeUtf8(Some(text)),
                _,
            ) => text.clone(),
            _ => return Err(usage()),
        };
        let version = match version {
            Expr::Literal(value, _) => value.to_string().parse::<u64>().map_err(|_| usage())?,
            _ => return Err(usage()),
        };
        // What the SQL names wrongly is the query's error (exit 1), as any other SQL error is.
        let as_query_error = |error: Error| match error.kind() {
            ErrorKind::Usage | ErrorKind::Config => Error::query(error.message()).into_datafusion(),
            _ => error.into_datafusion(),
        };
        let name = TableName::in_sql_text(&table).map_err(as_query_error)?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| DataFusionError::Plan(format!("{} needs a Tokio runtime", Self::NAME)))?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err(DataFusionError::Plan(format!("{} needs a multi-threaded Tokio runtime", Self::NAME)));
        }
        tokio::task::block_in_place(|| handle.block_on(self.provider(&name, version))).map_err(as_query_error)
    }
}

/// Several tables of one schema read as one: a source and the fixed records replayed from a
/// run's quarantine (`etl run --replay-quarantine`).
#[derive(Debug)]
pub struct UnionTable {
    parts: Vec<Arc<dyn TableProvider>>,
}

impl UnionTable {
    /// `parts` share the first one's schema (the same definition over other files).
    pub fn new(parts: Vec<Arc<dyn TableProvider>>) -> Self {
        UnionTable { parts }
    }
}

#[async_trait]
impl TableProvider for UnionTable {
    fn schema(&self) -> SchemaRef {
        self.parts[0].schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.parts[0].supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut plans = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            plans.push(part.scan(state, projection, filters, limit).await?);
        }
        datafusion::physical_plan::union::UnionExec::try_new(plans)
    }
}
