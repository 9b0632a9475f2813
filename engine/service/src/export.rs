//! `bianmin export`: the request summary and the rates as CSV for spreadsheets.
//!
//! Both read the projections database through its query layer (`projections::query`): the
//! requests export pages through the `request_summary` feed in change order, the rates export
//! runs the same grouped query as `GET /api/v1/stats`. Columns are the query types' field
//! names; timestamps are RFC 3339 in UTC; rates are ratios (0..1), empty when undefined. With
//! `bom` the file starts with a UTF-8 byte-order mark, which Excel needs to read Chinese text
//! correctly.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use projections::Projections;
use projections::fold::Summary;
use projections::query::{Counts, Dim, Filter, ListQuery, Period, Rates, RequestList, StatsQuery};
use serde::Serialize;

use crate::config::Config;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A flag's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The flag.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The projections database failed.
    #[error("projections: {0}")]
    Projections(#[from] projections::ProjectionError),
    /// Writing the CSV failed.
    #[error("writing: {0}")]
    Write(#[from] csv::Error),
    /// Opening or flushing the output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

/// Filters shared by both exports.
#[derive(Debug, Clone, Default, Args)]
pub struct ExportFilter {
    /// First period included (`YYYY-MM` for month, `YYYY-Www` for week, `YYYY-MM-DD` for day;
    /// the requests export always filters by received month).
    #[arg(long, value_name = "PERIOD")]
    pub from: Option<String>,
    /// Last period included.
    #[arg(long, value_name = "PERIOD")]
    pub to: Option<String>,
    /// Equality filter `dim=value` on a dimension (street, community, grid, micro_grid,
    /// department, category, channel, stage); repeat for several.
    #[arg(long = "filter", value_name = "DIM=VALUE")]
    pub filters: Vec<String>,
    /// Only requests referred to a department at least once.
    #[arg(long)]
    pub dispatched_only: bool,
}

impl ExportFilter {
    /// The query layer's filter.
    pub fn to_filter(&self) -> Result<Filter, ExportError> {
        let mut dims = Vec::new();
        for item in &self.filters {
            let Some((dim, value)) = item.split_once('=') else {
                return Err(ExportError::Invalid {
                    field: "--filter",
                    message: format!("`{item}` is not DIM=VALUE"),
                });
            };
            let dim = Dim::parse(dim.trim()).ok_or_else(|| ExportError::Invalid {
                field: "--filter",
                message: format!("`{dim}` is not one of {}", Dim::names()),
            })?;
            dims.push((dim, value.trim().to_string()));
        }
        Ok(Filter {
            dims,
            from: self.from.clone(),
            to: self.to.clone(),
            dispatched_only: self.dispatched_only,
        })
    }
}

/// Where and how the CSV is written.
#[derive(Debug, Clone, Default, Args)]
pub struct ExportOutput {
    /// Output file; standard output when absent.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Start with a UTF-8 byte-order mark (for Excel).
    #[arg(long)]
    pub bom: bool,
}

/// `bianmin export …`.
#[derive(Debug, Clone, Subcommand)]
pub enum ExportCommand {
    /// Every request's summary row (stage, location, category, department, lifecycle
    /// timestamps, deadlines, on-time flags, rating), one CSV row per request.
    Requests {
        /// Filters.
        #[command(flatten)]
        filter: ExportFilter,
        /// Output.
        #[command(flatten)]
        output: ExportOutput,
    },
    /// Rates and their counts per period and chosen dimensions (as `GET /api/v1/stats`).
    Rates {
        /// Period grain: day, week or month.
        #[arg(long, default_value = "month", value_parser = ["day", "week", "month"])]
        period: String,
        /// Dimensions to group by, comma-separated (street, community, grid, micro_grid,
        /// department, category, channel, stage).
        #[arg(long, value_delimiter = ',', value_name = "DIMS")]
        group_by: Vec<String>,
        /// Filters.
        #[command(flatten)]
        filter: ExportFilter,
        /// Output.
        #[command(flatten)]
        output: ExportOutput,
    },
}

impl ExportCommand {
    /// Runs the export against the projections database `config` names.
    pub async fn run(self, config: &Config, now: DateTime<Utc>) -> Result<ExitCode, ExportError> {
        let projections = Projections::connect(&config.projections_url()).await?;
        let (rows, output) = match self {
            ExportCommand::Requests { filter, output } => {
                let filter = filter.to_filter()?;
                let mut sink = open(&output)?;
                let rows =
                    export_requests(&projections, filter, now, &mut sink, output.bom).await?;
                sink.flush()?;
                (rows, output)
            }
            ExportCommand::Rates {
                period,
                group_by,
                filter,
                output,
            } => {
                let query = StatsQuery {
                    period: Period::parse(&period).unwrap_or_default(),
                    group_by: parse_dims(&group_by)?,
                    filter: filter.to_filter()?,
                    now,
                };
                let mut sink = open(&output)?;
                let rows = export_rates(&projections, &query, &mut sink, output.bom).await?;
                sink.flush()?;
                (rows, output)
            }
        };
        if let Some(path) = &output.output {
            eprintln!("{rows} rows written to {}", path.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn open(output: &ExportOutput) -> Result<Box<dyn Write>, ExportError> {
    Ok(match &output.output {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// Parses dimension names.
pub fn parse_dims(names: &[String]) -> Result<Vec<Dim>, ExportError> {
    names
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| {
            Dim::parse(n.trim()).ok_or_else(|| ExportError::Invalid {
                field: "--group-by",
                message: format!("`{n}` is not one of {}", Dim::names()),
            })
        })
        .collect()
}

/// Writes every request summary matching `filter` as CSV (header row first) and returns the
/// number of rows written. `now` judges the deadlines of open requests (`overdue`).
pub async fn export_requests(
    projections: &Projections,
    filter: Filter,
    now: DateTime<Utc>,
    out: &mut dyn Write,
    bom: bool,
) -> Result<u64, ExportError> {
    if bom {
        out.write_all("\u{feff}".as_bytes())?;
    }
    let mut writer = csv::Writer::from_writer(out);
    let mut cursor = None;
    let mut rows = 0u64;
    loop {
        let page = projections
            .requests(&ListQuery {
                list: RequestList::All,
                filter: filter.clone(),
                since_position: None,
                limit: 1000,
                cursor,
                now,
            })
            .await?;
        for summary in &page.items {
            writer.serialize(summary)?;
            rows += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if rows == 0 {
        // An empty export still names its columns.
        writer.write_record(summary_columns())?;
    }
    writer.flush()?;
    Ok(rows)
}

/// Writes the rates of `query` as CSV: `period`, one column per grouped dimension, then every
/// count and every rate. Returns the number of rows written.
pub async fn export_rates(
    projections: &Projections,
    query: &StatsQuery,
    out: &mut dyn Write,
    bom: bool,
) -> Result<u64, ExportError> {
    if bom {
        out.write_all("\u{feff}".as_bytes())?;
    }
    let rows = projections.stats(query).await?;
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    let mut header = vec!["period".to_string()];
    header.extend(query.group_by.iter().map(|d| d.name().to_string()));
    header.extend(field_names(&Counts::default()));
    header.extend(field_names(&Rates::default()));
    writer.write_record(&header)?;
    for row in &rows {
        let dims: Vec<Option<&str>> = query
            .group_by
            .iter()
            .map(|d| row.dims.get(d.name()).and_then(|v| v.as_deref()))
            .collect();
        writer.serialize((&row.period, dims, &row.counts, &row.rates))?;
    }
    writer.flush()?;
    Ok(rows.len() as u64)
}

/// The field names of a flat struct, in declaration order (its CSV header).
fn field_names<T: Serialize>(value: &T) -> Vec<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if writer.serialize(value).is_err() {
        return Vec::new();
    }
    let bytes = writer.into_inner().unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice());
    reader
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The header of the requests export (written alone when no request matches): the fields
/// of a request summary, in the order rows serialize them.
pub fn summary_columns() -> Vec<String> {
    field_names(&Summary::default())
}
