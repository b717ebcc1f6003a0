//! What `/proc` says about a process: resident memory, CPU time by thread, the
//! open-files limit. `perf` is not available everywhere; these are, and they are
//! enough to tell whether the server or the load generator held the cores.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};

/// Linux reports CPU times in `/proc` in USER_HZ, which is 100 on every ABI it runs.
const TICKS_PER_SECOND: f64 = 100.0;

/// Resident set size (`VmRSS`) in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .context("VmRSS in /proc/<pid>/status")?;
    Ok(kib * 1024)
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A thread's name and its user + system ticks, from one `stat` file. The name sits
/// in parentheses and may hold spaces, so fields are counted after the last `)`.
fn ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    // After the name: state is field 3, utime 14 and stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

/// CPU ticks by thread name (threads of the same name added up).
fn threads(pid: u32) -> BTreeMap<String, u64> {
    let mut by_name = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((name, t)) = ticks(&stat) {
            *by_name.entry(name).or_insert(0) += t;
        }
    }
    by_name
}

/// CPU use of some processes over an interval, in cores (1.0 = one core busy).
pub struct CpuMeter {
    procs: Vec<(&'static str, u32, BTreeMap<String, u64>)>,
    started: Instant,
}

impl CpuMeter {
    pub fn start(procs: &[(&'static str, u32)]) -> Self {
        Self {
            procs: procs
                .iter()
                .map(|(label, pid)| (*label, *pid, threads(*pid)))
                .collect(),
            started: Instant::now(),
        }
    }

    /// Cores each process used since `start`, and by thread name. Threads that ended
    /// in between are missing from both, so this is a floor.
    pub fn stop(&self) -> Value {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let cores = |t: u64| ((t as f64 / TICKS_PER_SECOND / secs) * 100.0).round() / 100.0;
        let mut out = serde_json::Map::new();
        for (label, pid, before) in &self.procs {
            let after = threads(*pid);
            let mut total = 0;
            let mut by_thread = serde_json::Map::new();
            for (name, t) in &after {
                let d = t.saturating_sub(before.get(name).copied().unwrap_or(0));
                total += d;
                if d > 0 {
                    by_thread.insert(name.clone(), json!(cores(d)));
                }
            }
            out.insert(
                (*label).to_owned(),
                json!({"cores": cores(total), "by_thread": by_thread}),
            );
        }
        json!({"seconds": secs, "processes": out})
    }
}

/// CPU use over exactly `[t0, t1)` of these processes and of the load generator.
pub fn cpu_during(
    mut procs: Vec<(&'static str, u32)>,
    t0: Instant,
    t1: Instant,
) -> tokio::task::JoinHandle<Value> {
    procs.push(("loadgen", std::process::id()));
    tokio::spawn(async move {
        tokio::time::sleep_until(t0.into()).await;
        let meter = CpuMeter::start(&procs);
        tokio::time::sleep_until(t1.into()).await;
        meter.stop()
    })
}

#[cfg(test)]
mod tests {
    use super::ticks;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let stat = "42 (tokio runtime) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(ticks(stat), Some(("tokio runtime".into(), 325)));
    }
}
