//! Shortcuts for the notebooks: each shows a table and a figure in one call,
//! so that a notebook cell stays one line. They print evcxr's display
//! protocol to stdout (outside a notebook that is just text).

use crate::analysis::{compare_table, versus_table};
use crate::data::Results;
use crate::plot::compare_figure;

/// Label of a run made by the notebook itself.
pub const THIS_RUN: &str = "this run (quick)";
/// Label of the committed results.
pub const COMMITTED: &str = "committed (full)";

/// One metric of one scenario from a run just made, beside the committed
/// results when there are some: the table, then the bars.
pub fn compare(scenario: &str, metric: &str, this_run: &Results, committed: Option<&Results>) {
    let second = committed.map(|c| (COMMITTED, c));
    compare_table(scenario, metric, (THIS_RUN, this_run), second).evcxr_display();
    compare_figure(scenario, metric, (THIS_RUN, this_run), second).evcxr_display();
}

/// One metric of one scenario for every loop of a run just made, with its
/// ratio to `reference` (`"asyncio"`), then the bars beside the committed run.
pub fn versus(
    scenario: &str,
    metric: &str,
    this_run: &Results,
    committed: Option<&Results>,
    reference: &str,
) {
    versus_table(this_run, scenario, metric, reference).evcxr_display();
    compare_figure(
        scenario,
        metric,
        (THIS_RUN, this_run),
        committed.map(|c| (COMMITTED, c)),
    )
    .evcxr_display();
}
