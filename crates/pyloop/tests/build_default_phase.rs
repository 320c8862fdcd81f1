//! The `phase-*` features add up: with several enabled the newest of them is
//! the build's default phase, with none `Phase::DEFAULT` (3.2.1).
//!
//! `cargo test` runs the no-feature case; `scripts/test.sh rust` also runs
//! `cargo test -p pyloop --test build_default_phase --features phase-3-1-1,phase-3-1-4`,
//! where two features are on at once.

use pyloop::BUILD_DEFAULT_PHASE;
use pyloop_core::Phase;

#[cfg(not(any(
    feature = "phase-3-1-1",
    feature = "phase-3-1-2",
    feature = "phase-3-1-3",
    feature = "phase-3-1-4",
    feature = "phase-3-1-5",
    feature = "phase-3-2-1",
    feature = "phase-3-3-1"
)))]
#[test]
fn without_a_feature_the_default_is_phase_default() {
    assert_eq!(BUILD_DEFAULT_PHASE, Phase::DEFAULT);
    assert_eq!(BUILD_DEFAULT_PHASE, Phase::EpollWake);
}

#[cfg(all(
    feature = "phase-3-1-1",
    feature = "phase-3-1-4",
    not(any(
        feature = "phase-3-1-5",
        feature = "phase-3-2-1",
        feature = "phase-3-3-1"
    ))
))]
#[test]
fn with_two_features_the_newer_wins() {
    assert_eq!(BUILD_DEFAULT_PHASE, Phase::TwoPhase);
}

/// Whatever the features, the default is one of the phases, and a phase
/// whose feature is enabled is never newer than it.
#[test]
fn no_enabled_phase_is_newer_than_the_default() {
    let enabled = [
        (cfg!(feature = "phase-3-1-1"), Phase::BatchLimit),
        (cfg!(feature = "phase-3-1-2"), Phase::AdaptiveSleep),
        (cfg!(feature = "phase-3-1-3"), Phase::CondvarWake),
        (cfg!(feature = "phase-3-1-4"), Phase::TwoPhase),
        (cfg!(feature = "phase-3-1-5"), Phase::SwapBuffer),
        (cfg!(feature = "phase-3-2-1"), Phase::EpollWake),
        (cfg!(feature = "phase-3-3-1"), Phase::LockFree),
    ];
    for (on, phase) in enabled {
        if on {
            assert!(
                phase <= BUILD_DEFAULT_PHASE,
                "{phase:?} > {BUILD_DEFAULT_PHASE:?}"
            );
        }
    }
    assert!(Phase::ALL.contains(&BUILD_DEFAULT_PHASE));
}
