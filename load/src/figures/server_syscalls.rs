//! The server's system calls per message (`--server-syscalls`): `perf stat` on the
//! server process over the measured window, counting the entries of the calls a
//! WebSocket server makes on its data path.
//!
//! Kernel crossings are what separates an engine from a raw TCP echo at small sizes (the
//! data-plane issue's figures are these), so they belong next to the CPU per message.
//! perf needs `kernel.perf_event_paranoid` ≤ 1 (or root) to trace another process.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The system calls counted.
pub const SYSCALLS: &[&str] = &[
    "io_uring_enter",
    "epoll_wait",
    "epoll_pwait",
    "recvfrom",
    "sendto",
    "sendmsg",
    "writev",
    "write",
    "read",
];

/// A `perf stat` counting the server's system calls, in a process group of its own
/// (perf and its `sleep`), stopped as a group: on [`finish`](Self::finish) with SIGINT,
/// on which perf prints its counts, or killed if dropped unfinished.
pub struct SyscallCount {
    perf: Option<Child>,
}

impl SyscallCount {
    /// Starts counting the system calls of process `pid` for `duration`.
    pub fn start(pid: u32, duration: Duration) -> std::io::Result<Self> {
        let events: Vec<String> = SYSCALLS
            .iter()
            .map(|call| format!("syscalls:sys_enter_{call}"))
            .collect();
        let perf = Command::new("perf")
            .args([
                "stat",
                "-x,",
                "-e",
                &events.join(","),
                "-p",
                &pid.to_string(),
            ])
            .args(["--", "sleep", &format!("{:.3}", duration.as_secs_f64())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        Ok(SyscallCount { perf: Some(perf) })
    }

    /// Stops counting (early, when the run was) and returns the counts by call, or why
    /// there are none.
    pub fn finish(mut self) -> Result<BTreeMap<String, u64>, String> {
        let perf = self.perf.take().ok_or("perf already finished")?;
        // perf prints its counts on SIGINT as at the end of its command; the group's
        // `sleep` ends with it.
        signal_group(&perf, rustix::process::Signal::INT);
        let output = perf.wait_with_output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&output.stderr);
        let counts = parse(&text);
        if counts.is_empty() {
            return Err(format!("perf stat counted nothing: {}", text.trim()));
        }
        Ok(counts)
    }
}

impl Drop for SyscallCount {
    fn drop(&mut self) {
        if let Some(mut perf) = self.perf.take() {
            signal_group(&perf, rustix::process::Signal::KILL);
            let _ = perf.wait();
        }
    }
}

/// Sends `signal` to the process group `child` leads.
fn signal_group(child: &Child, signal: rustix::process::Signal) {
    if let Some(group) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

/// The counts of `perf stat -x,` output: `COUNT,,syscalls:sys_enter_NAME,...` lines
/// (`<not counted>` and comment lines are skipped).
fn parse(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split(',');
        let (Some(count), Some(_), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(count), Some(call)) = (count.parse::<u64>(), event.split("sys_enter_").nth(1))
        else {
            continue;
        };
        counts.insert(call.to_string(), count);
    }
    counts
}

#[cfg(test)]
mod tests {
    #[test]
    fn perf_stat_lines_are_read_and_the_rest_skipped() {
        let text = "# started on ...\n\n\
            1234,,syscalls:sys_enter_io_uring_enter,5000000,100.00,,\n\
            <not counted>,,syscalls:sys_enter_read,0,0.00,,\n\
            7,,syscalls:sys_enter_write,5000000,100.00,,\n";
        let counts = super::parse(text);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts["io_uring_enter"], 1234);
        assert_eq!(counts["write"], 7);
    }
}
