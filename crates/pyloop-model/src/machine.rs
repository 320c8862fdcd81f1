//! Where this crate's own measurements ran: the record written beside every
//! sweep, which is `pyloop-measure`'s machine record with the sources a sweep
//! measures.

use serde_json::Value;

pub use pyloop_measure::machine::workspace_root;
/// Measures how much CPU *other* processes used while it was alive: a shared
/// machine's background load, recorded beside every sweep.
pub use pyloop_measure::Background;

/// Paths whose changes would change what a sweep measures.
pub const MEASURED_PATHS: [&str; 4] = [
    "Cargo.toml",
    "Cargo.lock",
    "crates/pyloop-core/src",
    "crates/pyloop-model/src",
];

/// The machine record: CPU model, logical CPUs, OS, `rustc -V`, build
/// profile, `git rev-parse HEAD`, whether the measured sources differ from
/// it, the date, and `mode`.
pub fn record(mode: &str) -> Value {
    Value::Object(pyloop_measure::machine::record(mode, &MEASURED_PATHS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_names_the_mode() {
        let r = record("full");
        assert_eq!(r["mode"], "full");
        assert!(r["git_dirty_measured"].is_boolean(), "{r}");
    }

    #[test]
    fn finds_the_workspace() {
        assert!(workspace_root().join("crates/pyloop-model").is_dir());
    }
}
