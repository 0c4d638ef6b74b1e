//! What `hotwire check` reports: one [`Finding`] per fact about the host or the configuration.
//!
//! Apart from the checks themselves, so that the check modules (`check`, and its AF_XDP part
//! `check_xdp`) all depend on it and not on one another.

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but not at its best.
    Warn,
    /// Blocks the configuration.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Severity.
    pub level: Level,
    /// Area (`config`, `cpu`, `memlock`, …).
    pub area: &'static str,
    /// What was found.
    pub message: String,
}
