//! A plain table that prints as markdown (for the book and the terminal) and
//! shows as HTML in a notebook (evcxr calls [`Table::evcxr_display`] on a
//! cell's last value).

use std::fmt;

/// A table of text cells, with a title and notes printed under it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Printed above the table (markdown: in bold), if any.
    pub title: Option<String>,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells, each as long as `headers`.
    pub rows: Vec<Vec<String>>,
    /// Columns aligned to the right (numbers); the others align left.
    pub right: Vec<bool>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
}

impl Table {
    /// An empty table with these headers; the first column aligns left, the others right.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        let headers: Vec<String> = headers.into_iter().map(Into::into).collect();
        let right = (0..headers.len()).map(|i| i > 0).collect();
        Table {
            headers,
            right,
            ..Table::default()
        }
    }

    /// Sets the title.
    pub fn titled(mut self, title: impl Into<String>) -> Table {
        self.title = Some(title.into());
        self
    }

    /// Appends a row (padded with empty cells, or cut, to the header's length).
    pub fn push<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    /// Appends a note.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// The table as GitHub/mdbook markdown (title and notes as paragraphs).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        if let Some(t) = &self.title {
            out.push_str(&format!("**{t}**\n\n"));
        }
        let line = |cells: &[String]| {
            let escaped: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", escaped.join(" | "))
        };
        out.push_str(&line(&self.headers));
        let rule: Vec<String> = self
            .right
            .iter()
            .map(|&r| {
                if r {
                    "---:".to_owned()
                } else {
                    "---".to_owned()
                }
            })
            .collect();
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        for n in &self.notes {
            out.push_str(&format!("\n{n}\n"));
        }
        out
    }

    /// The table as an HTML fragment.
    pub fn to_html(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut out = String::from("<div>");
        if let Some(t) = &self.title {
            out.push_str(&format!("<p><b>{}</b></p>", esc(t)));
        }
        out.push_str("<table><thead><tr>");
        for (i, h) in self.headers.iter().enumerate() {
            let align = if self.right[i] { "right" } else { "left" };
            out.push_str(&format!("<th style=\"text-align:{align}\">{}</th>", esc(h)));
        }
        out.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, c) in row.iter().enumerate() {
                let align = if self.right[i] { "right" } else { "left" };
                out.push_str(&format!("<td style=\"text-align:{align}\">{}</td>", esc(c)));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        for n in &self.notes {
            out.push_str(&format!("<p>{}</p>", esc(n)));
        }
        out.push_str("</div>");
        out
    }

    /// Shows the table in an evcxr notebook (as HTML).
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_markdown())
    }
}

/// A rate with three significant digits and a k/M suffix: `1.23M`, `456k`, `78.9`.
pub fn fmt_rate(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let (v, suffix) = if x.abs() >= 1e6 {
        (x / 1e6, "M")
    } else if x.abs() >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    format!("{}{suffix}", fmt_sig(v, 3))
}

/// `x` with `digits` significant digits, without exponent for ordinary sizes
/// (`0.00123`, `12.3`, `1230`); `–` if not finite.
pub fn fmt_sig(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    if !(-4..9).contains(&magnitude) {
        return format!("{:.*e}", digits.saturating_sub(1), x);
    }
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html() {
        let mut t = Table::new(["phase", "value"]).titled("T");
        t.push(["3.1.1", "1|2"]);
        t.push(["3.1.2"]);
        t.note("a note");
        let md = t.to_markdown();
        assert_eq!(
            md,
            "**T**\n\n| phase | value |\n|---|---:|\n| 3.1.1 | 1\\|2 |\n| 3.1.2 |  |\n\na note\n"
        );
        let html = t.to_html();
        assert!(
            html.contains("<td style=\"text-align:right\">1|2</td>"),
            "{html}"
        );
        assert_eq!(t.to_string(), md);
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_rate(1_234_567.0), "1.23M");
        assert_eq!(fmt_rate(456_000.0), "456k");
        assert_eq!(fmt_rate(78.91), "78.9");
        assert_eq!(fmt_sig(0.001234, 3), "0.00123");
        assert_eq!(fmt_sig(12.345, 3), "12.3");
        assert_eq!(fmt_sig(1234.0, 3), "1234");
        assert_eq!(fmt_sig(2.5e-7, 2), "2.5e-7");
        assert_eq!(fmt_sig(f64::NAN, 3), "–");
    }
}
