//! `bianmin notify dead-letters [--json]` and `bianmin notify replay <id> | --all-dead`.
//!
//! Both work on the delivery table in the projections database. Replay only queues rows
//! again: the notifier of a running `bianmin serve` sends them at its next round.

use std::process::ExitCode;

use clap::Subcommand;

use super::http::NotificationView;
use super::store::{DeliveryStore, Status};
use super::{NotifyError, now_ms};

/// The operator's notification commands.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// List the dead-letter list: notifications every attempt of which failed.
    DeadLetters {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Most rows shown.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Queue dead (or failed, or sent) notifications again with a fresh attempt budget; the
    /// running `bianmin serve` sends them (same notification id, so gateways deduplicate).
    Replay {
        /// The notification id.
        #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
        id: Option<uuid::Uuid>,
        /// Every notification in the dead-letter list.
        #[arg(long)]
        all_dead: bool,
    },
}

impl NotifyCommand {
    /// Runs the command against the delivery table at `database_url`.
    pub async fn run(&self, database_url: &str) -> Result<ExitCode, NotifyError> {
        let store = DeliveryStore::connect(database_url).await?;
        match self {
            NotifyCommand::DeadLetters { json, limit } => {
                let rows = store.list(Some(Status::Dead), None, *limit).await?;
                let views: Vec<NotificationView> = rows.into_iter().map(Into::into).collect();
                if *json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&views).expect("views serialise")
                    );
                } else if views.is_empty() {
                    println!("the dead-letter list is empty");
                } else {
                    println!(
                        "{:<36}  {:<18}  {:<24}  {:>8}  last error",
                        "notification", "kind", "channel", "attempts"
                    );
                    for v in &views {
                        let d = &v.delivery;
                        println!(
                            "{:<36}  {:<18}  {:<24}  {:>8}  {}",
                            d.notification_id,
                            d.kind,
                            d.channel,
                            d.attempts,
                            d.last_error.as_deref().unwrap_or("")
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            NotifyCommand::Replay { id: Some(id), .. } => {
                match store.replay(&id.to_string(), now_ms()).await? {
                    None => {
                        eprintln!("no notification {id}");
                        Ok(ExitCode::FAILURE)
                    }
                    Some(row) if row.status == Status::Suppressed => {
                        eprintln!(
                            "notification {id} was suppressed ({}) and is never sent",
                            row.last_error.as_deref().unwrap_or("no reason")
                        );
                        Ok(ExitCode::FAILURE)
                    }
                    Some(_) => {
                        println!("notification {id} queued again");
                        Ok(ExitCode::SUCCESS)
                    }
                }
            }
            NotifyCommand::Replay { .. } => {
                let count = store.replay_all_dead(now_ms()).await?;
                println!("{count} dead notification(s) queued again");
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
