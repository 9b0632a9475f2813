//! Rebuilding projectors from position 0 into shadow tables (`<table>_rebuild`), indexed like
//! the live ones and swapped in in one transaction, so reads never stop.

use std::future::Future;

use crate::db::Backend;
use crate::{
    PROJECTORS, ProjectionError, Projections, REBUILD_BATCH, ShadowIndexes, last_recorded_at, write,
};
use schemas::LoggedCommit;

impl Projections {
    /// Rebuilds `projector` from position 0 into shadow tables (`<table>_rebuild`) and swaps
    /// them in, in one transaction, without stopping reads: [`Projections::rebuild_projectors`]
    /// for one projector. Returns the position the swapped tables are at.
    pub async fn rebuild<F, Fut, E>(
        &self,
        projector: &str,
        head: u64,
        source: F,
        progress: impl Fn(u64, u64),
    ) -> Result<u64, ProjectionError>
    where
        F: FnMut(u64) -> Fut,
        Fut: Future<Output = Result<Vec<LoggedCommit>, E>>,
        E: std::fmt::Display,
    {
        let rebuilt = self
            .rebuild_projectors(&[projector], head, source, progress)
            .await?;
        Ok(rebuilt.first().map_or(0, |(_, position)| *position))
    }

    /// Rebuilds every projector of `projectors` (each once, in the order given) from position 0
    /// into shadow tables (`<table>_rebuild`) in ONE pass over the source, and swaps them all
    /// in, in one transaction, without stopping reads.
    ///
    /// `source(from)` returns the commits at positions `>= from` in ascending order (a batch;
    /// empty when there are no more). Each gathering of up to [`REBUILD_BATCH`] commits is read
    /// once and applied to every projector's shadow (on PostgreSQL in one transaction per
    /// projector, run concurrently; on SQLite in one transaction), while the next gathering is
    /// read. `head` is the log head for progress; `progress(done, head)` is called after every
    /// gathering. The live projectors may keep applying meanwhile: the swap transaction locks
    /// their checkpoints (in the order given), catches the shadows up to the furthest of them,
    /// swaps, and never moves a checkpoint backwards. Returns, per projector, the position its
    /// swapped tables are at.
    pub async fn rebuild_projectors<F, Fut, E>(
        &self,
        projectors: &[&str],
        head: u64,
        mut source: F,
        progress: impl Fn(u64, u64),
    ) -> Result<Vec<(&'static str, u64)>, ProjectionError>
    where
        F: FnMut(u64) -> Fut,
        Fut: Future<Output = Result<Vec<LoggedCommit>, E>>,
        E: std::fmt::Display,
    {
        let mut names: Vec<&'static str> = Vec::new();
        for projector in projectors {
            Self::check(projector)?;
            let name = PROJECTORS
                .iter()
                .copied()
                .find(|p| p == projector)
                .ok_or_else(|| ProjectionError::UnknownProjector((*projector).to_owned()))?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut tables: Vec<&'static str> = Vec::new();
        for name in &names {
            tables.extend_from_slice(Self::check(name)?);
        }
        self.create_shadow(&tables).await?;
        // The next gathering is read from the source while the current one is written.
        let mut pos = 0u64;
        let mut current = gather(&mut source, pos).await?;
        while let Some(last) = current.commits.last().map(|c| c.position) {
            let write = self.write_shadows(&names, &current.commits);
            let read = async {
                if current.ended {
                    Ok(Gathered::default())
                } else {
                    gather(&mut source, last).await
                }
            };
            let (written, next) = tokio::join!(write, read);
            written?;
            pos = last;
            progress(pos, head.max(pos));
            current = next?;
        }
        let (renames, late) = self.index_shadow(&tables).await?;
        // Swap: lock every live checkpoint, catch the shadows up to the furthest, rename.
        let mut tx = self.pool.begin().await?;
        let mut live = Vec::with_capacity(names.len());
        for name in &names {
            live.push(Self::lock_checkpoint_in(&mut tx, name).await?);
        }
        let furthest = live.iter().copied().max().unwrap_or(0);
        let mut last_recorded = None;
        while pos < furthest {
            let batch = source(pos + 1)
                .await
                .map_err(|e| ProjectionError::Source(e.to_string()))?;
            let fresh: Vec<&LoggedCommit> = batch.iter().filter(|c| c.position > pos).collect();
            let Some(last) = fresh.last() else { break };
            let last_pos = last.position;
            last_recorded = last_recorded_at(last);
            for name in &names {
                write::apply_commits(&mut tx, name, "_rebuild", &fresh).await?;
            }
            pos = last_pos;
        }
        let mut index_sql: Vec<String> = Vec::new();
        for t in &tables {
            if tx.backend() == Backend::Sqlite {
                for r in tx
                    .fetch(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
                        &[(*t).into()],
                    )
                    .await?
                {
                    if let Some(sql) = r.text(0)? {
                        index_sql.push(sql);
                    }
                }
            }
            tx.exec(&format!("DROP TABLE {t}"), &[]).await?;
            tx.exec(&format!("ALTER TABLE {t}_rebuild RENAME TO {t}"), &[])
                .await?;
        }
        for sql in index_sql {
            tx.exec(&sql, &[]).await?;
        }
        for (shadow, live) in renames {
            tx.exec(&format!("ALTER INDEX {shadow} RENAME TO {live}"), &[])
                .await?;
        }
        for sql in late {
            tx.exec(&sql, &[]).await?;
        }
        let mut rebuilt = Vec::with_capacity(names.len());
        for (name, live) in names.iter().zip(live) {
            if pos > live {
                Self::set_checkpoint(&mut tx, name, pos, last_recorded).await?;
            }
            rebuilt.push((*name, pos.max(live)));
        }
        tx.commit().await?;
        progress(pos, head.max(pos));
        Ok(rebuilt)
    }

    /// Applies one gathering of a rebuild to the shadow tables of every projector of `names`:
    /// on PostgreSQL one transaction per projector, all at once; on SQLite (one writer at a
    /// time) one transaction for all of them.
    async fn write_shadows(
        &self,
        names: &[&'static str],
        commits: &[LoggedCommit],
    ) -> Result<(), ProjectionError> {
        let fresh: Vec<&LoggedCommit> = commits.iter().collect();
        match self.backend() {
            Backend::Postgres => {
                let writes = names.iter().map(|name| {
                    let fresh = &fresh;
                    async move {
                        let mut tx = self.pool.begin().await?;
                        write::apply_commits(&mut tx, name, "_rebuild", fresh).await?;
                        tx.commit().await?;
                        Ok::<(), ProjectionError>(())
                    }
                });
                futures::future::try_join_all(writes).await?;
            }
            Backend::Sqlite => {
                let mut tx = self.pool.begin().await?;
                for name in names {
                    write::apply_commits(&mut tx, name, "_rebuild", &fresh).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// PostgreSQL: builds on each shadow table the secondary indexes of its live table, under
    /// shadow names, and returns the renames (shadow name → live name, the primary key's
    /// included) the swap makes once the live table is dropped. SQLite: nothing (the swap
    /// re-creates the indexes from the live table's definitions).
    /// Definitions it cannot rewrite come back to be built during the swap.
    async fn index_shadow(&self, tables: &[&str]) -> Result<ShadowIndexes, ProjectionError> {
        let mut renames = Vec::new();
        let mut late = Vec::new();
        if self.backend() != Backend::Postgres {
            return Ok((renames, late));
        }
        let mut tx = self.pool.begin().await?;
        for t in tables {
            let sql = "SELECT i.relname::text, pg_get_indexdef(x.indexrelid), x.indisprimary \
                       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                       WHERE x.indrelid = $1::text::regclass ORDER BY i.relname";
            let live = tx.fetch(sql, &[(*t).into()]).await?;
            let shadow = tx.fetch(sql, &[format!("{t}_rebuild").into()]).await?;
            let shadow_pk = shadow
                .iter()
                .filter(|r| r.bool(2).ok().flatten() == Some(true))
                .find_map(|r| r.text(0).ok().flatten());
            for (i, r) in live.iter().enumerate() {
                let (Some(name), Some(def)) = (r.text(0)?, r.text(1)?) else {
                    continue;
                };
                if r.bool(2)? == Some(true) {
                    if let Some(pk) = &shadow_pk {
                        renames.push((pk.clone(), name));
                    }
                    continue;
                }
                let parts = def.find(" ON ").zip(def.find(" USING "));
                let Some((head, using)) = parts
                    .and_then(|(on, using)| Some((def[..on].strip_suffix(name.as_str())?, using)))
                else {
                    // A definition this cannot rewrite: built as is during the swap.
                    late.push(def);
                    continue;
                };
                let shadow_name = format!("{t}_rebuild_ix{i}");
                tx.exec(
                    &format!("{head}{shadow_name} ON {t}_rebuild{}", &def[using..]),
                    &[],
                )
                .await?;
                renames.push((shadow_name, name));
            }
        }
        tx.commit().await?;
        Ok((renames, late))
    }

    async fn create_shadow(&self, tables: &[&str]) -> Result<(), ProjectionError> {
        let mut tx = self.pool.begin().await?;
        for t in tables {
            tx.exec(&format!("DROP TABLE IF EXISTS {t}_rebuild"), &[])
                .await?;
            match tx.backend() {
                Backend::Postgres => {
                    // Only the primary key now (upserts need it); the other indexes are built
                    // once the bulk of the rows is in (`index_shadow`), not row by row.
                    tx.exec(
                        &format!(
                            "CREATE TABLE {t}_rebuild (LIKE {t} INCLUDING ALL EXCLUDING INDEXES)"
                        ),
                        &[],
                    )
                    .await?;
                    let pk = tx
                        .fetch(
                            "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
                             WHERE conrelid = $1::text::regclass AND contype = 'p'",
                            &[(*t).into()],
                        )
                        .await?;
                    if let Some(def) = pk.first().map(|r| r.text(0)).transpose()?.flatten() {
                        tx.exec(&format!("ALTER TABLE {t}_rebuild ADD {def}"), &[])
                            .await?;
                    }
                }
                Backend::Sqlite => {
                    let rows = tx
                        .fetch(
                            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1",
                            &[(*t).into()],
                        )
                        .await?;
                    let sql = rows
                        .first()
                        .map(|r| r.text(0))
                        .transpose()?
                        .flatten()
                        .unwrap_or_default();
                    let Some(open) = sql.find('(') else {
                        return Err(ProjectionError::Db(sqlx::Error::Protocol(format!(
                            "no definition of {t}"
                        ))));
                    };
                    tx.exec(&format!("CREATE TABLE {t}_rebuild {}", &sql[open..]), &[])
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Commits gathered from a rebuild source for one transaction.
#[derive(Default)]
struct Gathered {
    /// Ascending, all above the position gathering started from.
    commits: Vec<LoggedCommit>,
    /// The source returned nothing new: this is the last gathering.
    ended: bool,
}

/// Reads source batches from `after + 1` until [`REBUILD_BATCH`] commits are gathered or the
/// source has nothing more.
async fn gather<F, Fut, E>(source: &mut F, after: u64) -> Result<Gathered, ProjectionError>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Vec<LoggedCommit>, E>>,
    E: std::fmt::Display,
{
    let mut out = Gathered::default();
    let mut next = after;
    while out.commits.len() < REBUILD_BATCH {
        let batch = source(next + 1)
            .await
            .map_err(|e| ProjectionError::Source(e.to_string()))?;
        let before = out.commits.len();
        out.commits
            .extend(batch.into_iter().filter(|c| c.position > next));
        match out.commits.last() {
            Some(c) if out.commits.len() > before => next = c.position,
            _ => {
                out.ended = true;
                break;
            }
        }
    }
    Ok(out)
}
