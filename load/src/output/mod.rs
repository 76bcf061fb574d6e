//! What a run leaves: the report (text and JSON), the thresholds it is judged by, the
//! saved run of `--out`, `load compare` over saved runs, and the HTML page with its plots.

pub mod compare;
pub mod plot;
pub mod report;
pub mod saved;
pub mod thresholds;
