//! The command line of `core_scenarios`: help, and clean errors (no panic, no
//! backtrace) for what it does not know. No scenario runs here.

use std::process::{Command, Output};

fn core_scenarios(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_core_scenarios"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run core_scenarios")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_exits_zero_and_lists_the_choices() {
    for flag in ["--help", "-h"] {
        let out = core_scenarios(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("usage: core_scenarios"), "{text}");
        for listed in ["3.2.1", "crossbeam", "lock_hold", "--full", "--out FILE"] {
            assert!(text.contains(listed), "{listed} missing from:\n{text}");
        }
    }
}

#[test]
fn bad_input_is_a_clean_error() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--only", "nope"],
            "unknown contender \"nope\": expected one of 3.1.1",
        ),
        (
            &["--scenarios", "nope"],
            "unknown scenario \"nope\": expected one of single",
        ),
        (&["--reps", "x"], "--reps: \"x\" is not a whole number"),
        (
            &["--item", "foo"],
            "--item: \"foo\" is not one of closure, u64",
        ),
        (&["--out"], "missing argument for option '--out'"),
        (&["--bogus"], "invalid option '--bogus'"),
    ];
    for (args, message) in cases {
        let out = core_scenarios(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} wrote results");
    }
}
