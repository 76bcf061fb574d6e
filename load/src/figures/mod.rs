//! What a run measures: each thread's histograms and counters and their sum, the
//! second-by-second series, the server's CPU and system calls, and the load's own
//! environment and CPU (the self-check).

pub mod environment;
pub mod series;
pub mod server_cpu;
pub mod server_syscalls;
pub mod stats;
