//! CPU time of the processes under load, from `/proc/<pid>/stat`: the evidence for which
//! process binds throughput on a small machine.

use std::collections::BTreeMap;

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far by each group: `serve` (the engine's pid), `nats-server`,
/// `postgres` (every backend), `bench` (this process).
pub fn snapshot(serve_pid: Option<u32>) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    if let Some(pid) = serve_pid {
        out.insert("serve", cpu_seconds(&pid.to_string()).unwrap_or(0.0));
    }
    out.insert("bench", cpu_seconds("self").unwrap_or(0.0));
    let (mut nats, mut postgres) = (0.0, 0.0);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            match comm.trim() {
                "nats-server" => nats += cpu_seconds(pid).unwrap_or(0.0),
                "postgres" => postgres += cpu_seconds(pid).unwrap_or(0.0),
                _ => {}
            }
        }
    }
    out.insert("nats-server", nats);
    out.insert("postgres", postgres);
    out
}

/// Per group, the CPU used between two snapshots as a share of one core over `seconds`.
pub fn shares(
    before: &BTreeMap<&'static str, f64>,
    after: &BTreeMap<&'static str, f64>,
    seconds: f64,
) -> BTreeMap<String, CpuShare> {
    after
        .iter()
        .map(|(name, end)| {
            let used = (end - before.get(name).copied().unwrap_or(0.0)).max(0.0);
            let share = CpuShare {
                cpu_seconds: used,
                cores: used / seconds.max(1e-9),
            };
            (name.to_string(), share)
        })
        .collect()
}

/// CPU used by one process group during a phase.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuShare {
    /// CPU seconds (user + system).
    pub cpu_seconds: f64,
    /// Average cores busy (1.0 = one core fully).
    pub cores: f64,
}

/// utime + stime of `/proc/<pid>/stat`, in seconds (postgres backends that exit mid-phase
/// drop out of the sum, so the postgres figure is a lower bound).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_readable_cpu_time_and_shares_never_go_negative() {
        let spin: u64 = (0..2_000_000u64).fold(0, |a, b| a.wrapping_add(b * b));
        assert!(spin > 0);
        assert!(cpu_seconds("self").is_some());
        let before = BTreeMap::from([("bench", 5.0)]);
        let after = BTreeMap::from([("bench", 4.0), ("serve", 2.0)]);
        let s = shares(&before, &after, 2.0);
        assert_eq!(s["bench"].cpu_seconds, 0.0);
        assert_eq!(s["serve"].cores, 1.0);
    }
}
