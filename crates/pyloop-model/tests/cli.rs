//! The command lines of `producer_sweep` and `amdahl_book`: help, and clean
//! errors (no panic) for what they do not know. Nothing is measured or written.

use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run the binary")
}

#[test]
fn help_exits_zero() {
    for (bin, name) in [
        (env!("CARGO_BIN_EXE_producer_sweep"), "producer_sweep"),
        (env!("CARGO_BIN_EXE_amdahl_book"), "amdahl_book"),
    ] {
        let out = run(bin, &["--help"]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with(&format!("usage: {name}")), "{text}");
    }
}

#[test]
fn bad_input_is_a_clean_error() {
    let cases: [(&str, &[&str], &str); 4] = [
        (
            env!("CARGO_BIN_EXE_producer_sweep"),
            &["--bogus"],
            "invalid option '--bogus'",
        ),
        (
            env!("CARGO_BIN_EXE_producer_sweep"),
            &["--reps", "x"],
            "--reps: \"x\" is not a whole number",
        ),
        (
            env!("CARGO_BIN_EXE_producer_sweep"),
            &["--out"],
            "missing argument for option '--out'",
        ),
        (
            env!("CARGO_BIN_EXE_amdahl_book"),
            &["--bogus"],
            "invalid option '--bogus'",
        ),
    ];
    for (bin, args, message) in cases {
        let out = run(bin, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} wrote output");
    }
}
