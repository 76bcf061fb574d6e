//! Where a run ran: the machine, the kernel, the build, and the load threads' own CPU.
//!
//! A saved run is compared with others later, often from another machine or another
//! build; without these a ratio cannot be trusted. And a load generator that is itself
//! saturated measures itself: each load thread's CPU over the measured window is read
//! (`CLOCK_THREAD_CPUTIME_ID`, through `rustix`, no `unsafe`) and a thread busy past
//! [`SATURATED`] of the window is called out.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

/// A load thread busier than this share of the measured window is called saturated.
pub const SATURATED: f64 = 0.9;

/// The CPU time the calling thread has used so far.
pub fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// One load thread's CPU over the measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThreadCpu {
    /// CPU time used.
    pub cpu: Duration,
    /// Wall time it was measured over.
    pub wall: Duration,
}

impl ThreadCpu {
    /// The share of the window the thread was on a CPU (0..1, a little more with
    /// rounding).
    pub fn busy(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

/// The machine and build, as a JSON object: CPU model and count, kernel, host name,
/// the load's own version and git revision, and when the run started (RFC 3339, UTC).
pub fn describe(started: SystemTime) -> Value {
    let uname = rustix::system::uname();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    json!({
        "cpu_model": cpu_model(&cpuinfo),
        "cpus": online_cpus(&cpuinfo),
        // What this process may run on (taskset): fewer than `cpus` when pinned.
        "cpus_allowed": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "kernel": format!(
            "{} {}",
            uname.sysname().to_string_lossy(),
            uname.release().to_string_lossy()
        ),
        "hostname": uname.nodename().to_string_lossy(),
        "load_version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("LOAD_GIT_REVISION").unwrap_or("unknown"),
        "started_at": humantime::format_rfc3339_seconds(started).to_string(),
    })
}

/// The machine's CPUs (/proc/cpuinfo's `processor` entries), whatever this process is
/// pinned to.
fn online_cpus(cpuinfo: &str) -> usize {
    match cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count()
    {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// The first `model name` of /proc/cpuinfo ("unknown" elsewhere).
fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, model)| model.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_loop_shows_in_the_thread_cpu() {
        let before = thread_cpu();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        let used = thread_cpu() - before;
        let figure = ThreadCpu {
            cpu: used,
            wall: start.elapsed(),
        };
        // A spinning thread is on a CPU most of the time, even on a shared machine.
        assert!(figure.busy() > 0.3, "{figure:?}");
        assert!(figure.busy() < 1.2, "{figure:?}");
    }

    #[test]
    fn the_description_names_the_machine() {
        let d = describe(SystemTime::now());
        assert!(d["cpus"].as_u64().unwrap() >= 1);
        assert!(d["kernel"].as_str().unwrap().starts_with("Linux "));
        assert!(d["started_at"].as_str().unwrap().ends_with('Z'));
        assert_ne!(d["cpu_model"], "");
    }
}
