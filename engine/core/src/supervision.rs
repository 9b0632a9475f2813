//! What supervision must do for a request at a given time (rule 17).
//!
//! Pure functions over the request's state: the shell's supervision loop calls [`due`] at
//! [`next_wakeup`] and submits the returned commands as the `system` actor. Each reminder,
//! warning and overdue mark fires once per deadline instant: the request remembers what
//! fired, and `decide` refuses a repeat, so a restarted loop cannot double-fire.
//!
//! - Reminder and pre-breach warning: for the completion deadline, at the stamped
//!   `remind_at` / `warn_at` instants.
//! - Overdue mark: for every deadline in force, at its due instant.
//! - Escalation (日常 → 挂牌 → 约谈): one level per `escalation_grace` while a deadline that
//!   was marked overdue is still in force, starting one grace period after it was due. An
//!   assisting part's missed deadline (`assistance`) is marked overdue against the assisting
//!   departments but does not escalate the request: its lead is not the unit that missed it.
//!
//! Nothing is due once the request is replied or archived: no deadline is in force then.
//!
//! **Catching up.** [`due_firings`] names the instant each firing was due. The shell records a
//! firing as of that instant, so after downtime an escalation is recorded when it was reached
//! and the next level counts its grace from there: folding the firings one at a time reaches
//! every level the request would have reached, at the instants it would have reached them.

use schemas::command::{Escalate, MarkOverdue, Remind, Warn};
use schemas::{Command, DeadlineKind, SupervisionLevel, Timestamp};

use crate::policy::Policy;
use crate::request::{Firing, Request, next_level};

/// An action supervision will take at an instant.
struct Planned {
    at: Timestamp,
    command: Command,
}

fn planned(request: &Request, policy: &Policy) -> Vec<Planned> {
    let mut out = Vec::new();
    for (deadline, due_at) in request.deadlines_in_force() {
        if deadline == DeadlineKind::Completion
            && let Some(d) = request.deadlines()
        {
            if !request.has_fired(Firing::Remind, deadline, due_at) {
                out.push(Planned {
                    at: d.remind_at,
                    command: Command::Remind(Remind { deadline, due_at }),
                });
            }
            if !request.has_fired(Firing::Warn, deadline, due_at) {
                out.push(Planned {
                    at: d.warn_at,
                    command: Command::Warn(Warn { deadline, due_at }),
                });
            }
        }
        if !request.has_fired(Firing::Overdue, deadline, due_at) {
            out.push(Planned {
                at: due_at,
                command: Command::MarkOverdue(MarkOverdue { deadline, due_at }),
            });
        }
    }
    if let Some(p) = escalation(request, policy) {
        out.push(p);
    }
    out
}

/// The next escalation, if a deadline marked overdue is still in force.
fn escalation(request: &Request, policy: &Policy) -> Option<Planned> {
    let (deadline, missed_at) = request
        .deadlines_in_force()
        .into_iter()
        .filter(|(k, at)| {
            *k != DeadlineKind::Assistance && request.has_fired(Firing::Overdue, *k, *at)
        })
        .min_by_key(|(_, at)| *at)?;
    let current = request.supervision_level();
    let level = next_level(current)?;
    let basis = match request.supervision().escalated_at {
        Some(last) if current.is_some() && last > missed_at => last,
        _ => missed_at,
    };
    let chain = request
        .classification()
        .map(|c| c.escalation_chain.as_slice())
        .unwrap_or(&[]);
    let index = match level {
        SupervisionLevel::Daily => 0,
        SupervisionLevel::Listed => 1,
        SupervisionLevel::Interview => 2,
    };
    let to = chain
        .get(index)
        .or(chain.last())
        .cloned()
        .unwrap_or_else(|| "centre".to_string());
    Some(Planned {
        at: basis + policy.escalation_grace(),
        command: Command::Escalate(Escalate {
            level,
            to,
            reason: format!("{deadline:?} deadline due at {missed_at} missed"),
        }),
    })
}

/// Remind / Warn / MarkOverdue / Escalate commands that are due at `now` and not yet recorded.
pub fn due(request: &Request, now: Timestamp, policy: &Policy) -> Vec<Command> {
    due_firings(request, now, policy)
        .into_iter()
        .map(|(_, command)| command)
        .collect()
}

/// The commands of [`due`], each with the instant it was due (at or before `now`), earliest
/// first. An escalation depends on the one before it: only the next level is returned, and the
/// level after it becomes due once that one is recorded.
pub fn due_firings(
    request: &Request,
    now: Timestamp,
    policy: &Policy,
) -> Vec<(Timestamp, Command)> {
    let mut due: Vec<(Timestamp, Command)> = planned(request, policy)
        .into_iter()
        .filter(|p| p.at <= now)
        .map(|p| (p.at, p.command))
        .collect();
    due.sort_by_key(|(at, _)| *at);
    due
}

/// The earliest instant at which [`due`] would return something new (possibly in the past,
/// when something is already due); `None` when nothing is planned.
pub fn next_wakeup(request: &Request, policy: &Policy) -> Option<Timestamp> {
    planned(request, policy).into_iter().map(|p| p.at).min()
}
