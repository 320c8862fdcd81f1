//! Shortcuts for the notebooks, so that a cell stays one line.
//!
//! evcxr shows one output per MIME type per cell (a second `text/html` output
//! replaces the first), so a cell that should show a table *and* a figure, or
//! one per scenario, returns a single [`Html`] that holds them all.

use std::iter::FromIterator;

use crate::analysis::{compare_table, versus_table};
use crate::data::Results;
use crate::plot::{compare_figure, Figure};
use crate::table::Table;

/// Label of a run made by the notebook itself.
pub const THIS_RUN: &str = "this run (quick)";
/// Label of the committed results.
pub const COMMITTED: &str = "committed (full)";

/// An HTML fragment that a notebook cell shows (evcxr calls
/// [`Html::evcxr_display`] on a cell's last value).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Html(pub String);

impl Html {
    /// Appends another fragment.
    pub fn push(&mut self, other: impl Into<Html>) {
        self.0.push_str(&other.into().0);
    }

    /// Shows the fragment in an evcxr notebook.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.0
        );
    }
}

impl From<&Table> for Html {
    fn from(t: &Table) -> Html {
        Html(t.to_html())
    }
}

impl From<Table> for Html {
    fn from(t: Table) -> Html {
        Html(t.to_html())
    }
}

impl From<&Figure> for Html {
    fn from(f: &Figure) -> Html {
        match f.to_svg() {
            Ok(svg) => Html(format!("<div>{svg}</div>")),
            Err(e) => Html(format!("<p>cannot draw the figure: {e}</p>")),
        }
    }
}

impl From<Figure> for Html {
    fn from(f: Figure) -> Html {
        Html::from(&f)
    }
}

impl FromIterator<Html> for Html {
    fn from_iter<I: IntoIterator<Item = Html>>(iter: I) -> Html {
        let mut out = Html::default();
        for h in iter {
            out.push(h);
        }
        out
    }
}

/// One metric of one scenario from a run just made, beside the committed
/// results when there are some: the table, then the bars.
pub fn compare(
    scenario: &str,
    metric: &str,
    this_run: &Results,
    committed: Option<&Results>,
) -> Html {
    let second = committed.map(|c| (COMMITTED, c));
    let mut out = Html::from(compare_table(
        scenario,
        metric,
        (THIS_RUN, this_run),
        second,
    ));
    out.push(compare_figure(
        scenario,
        metric,
        (THIS_RUN, this_run),
        second,
    ));
    out
}

/// One metric of one scenario for every loop of a run just made, with its
/// ratio to `reference` (`"asyncio"`), then the bars beside the committed run.
pub fn versus(
    scenario: &str,
    metric: &str,
    this_run: &Results,
    committed: Option<&Results>,
    reference: &str,
) -> Html {
    let mut out = Html::from(versus_table(this_run, scenario, metric, reference));
    out.push(compare_figure(
        scenario,
        metric,
        (THIS_RUN, this_run),
        committed.map(|c| (COMMITTED, c)),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_concatenate() {
        let mut t = Table::new(["a", "b"]);
        t.push(["1", "2"]);
        let all: Html = [Html::from(&t), Html("<p>x</p>".into())]
            .into_iter()
            .collect();
        assert!(all.0.starts_with("<div><table>"), "{}", all.0);
        assert!(all.0.ends_with("<p>x</p>"));
        let fig = crate::plot::bar_figure("t", "ns", &["a".into()], &[]);
        assert!(Html::from(fig).0.contains("<svg"));
    }
}
