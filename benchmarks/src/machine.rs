//! The record written beside the core scenarios' results: `pyloop-measure`'s
//! machine record, plus the peer's version, whether the whole tree differs
//! from the commit, and a note on reading the figures.

use pyloop_measure::machine;
use serde_json::{json, Value};

/// Paths whose changes would change what is measured: `git_dirty_measured`
/// says whether any of them differs from the commit.
pub const MEASURED_PATHS: [&str; 6] = [
    "Cargo.toml",
    "Cargo.lock",
    "crates/pyloop-core/src",
    "benchmarks/Cargo.toml",
    "benchmarks/src",
    "benchmarks/benches",
];

/// The machine record, as a JSON object. `mode` is `"quick"` or `"full"`.
pub fn record(mode: &str) -> Value {
    let mut record = machine::record(mode, &MEASURED_PATHS);
    record.insert(
        "crossbeam_channel".into(),
        json!(machine::locked_version("crossbeam-channel")),
    );
    record.insert("git_dirty".into(), json!(machine::git_dirty(&["."])));
    record.insert(
        "note".into(),
        json!(
            "a shared machine: figures are medians over repetitions; compare contenders \
             within one run, not absolute times across runs"
        ),
    );
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_record_names_the_peer_version_and_the_tree_state() {
        let r = super::record("quick");
        assert!(r["crossbeam_channel"].is_string(), "{r}");
        assert!(r["git_dirty"].is_boolean(), "{r}");
        assert_eq!(r["mode"], "quick");
    }
}
