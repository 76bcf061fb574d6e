//! The server's CPU time, from `/proc/PID/stat`: when the load generator is the limit,
//! servers still differ in how much CPU each message costs them.

use std::time::Duration;

/// User plus system CPU time of process `pid` so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields
    // after the last ')'. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks as f64,
    ))
}

/// Clock ticks per second, the unit of /proc's CPU times (from the kernel's auxiliary
/// vector, through `rustix`).
fn clock_ticks() -> Option<u64> {
    Some(rustix::param::clock_ticks_per_second()).filter(|&t| t > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_our_own_cpu_time() {
        let pid = std::process::id();
        let t = super::cpu_time(pid).expect("own /proc entry");
        assert!(t < std::time::Duration::from_secs(3600));
    }
}
