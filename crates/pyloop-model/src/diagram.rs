//! The book's diagrams, drawn as SVG from this source so that they cannot drift
//! from a hand-drawn copy: the data path of a callback ([`data_path`]), the
//! lost wake-up that phase 3.1.3 prevents ([`lost_wake_up`]) and the deadlock
//! between the GIL and the queue lock that running callbacks under the lock
//! invites ([`gil_deadlock`]).
//!
//! Each is drawn at [`WIDTH`] pixels, the width the book shows it at (its text
//! column is 750 px), with 13–15 px text, so nothing is scaled down. The names
//! in the boxes are the code's: when a function is renamed, change it here too
//! (`scripts/test.sh tables` regenerates the SVGs and fails if they differ
//! from the committed ones, so a stale diagram shows up as a diff).

use std::fmt::Write;

/// Width of every diagram, in pixels.
pub const WIDTH: u32 = 720;

const INK: &str = "#222222";
const MUTED: &str = "#666666";
const LOOP: &str = "#e8f1fa";
const PRODUCER: &str = "#fdf0e3";
const SHARED: &str = "#eef6ee";
const BAD: &str = "#c0392b";
const GOOD: &str = "#1e7b34";

/// A small SVG writer: boxes, text, arrows.
struct Svg {
    body: String,
    height: u32,
}

impl Svg {
    fn new(height: u32, title: &str) -> Svg {
        let mut body = String::new();
        let _ = write!(
            body,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13">
<title>{}</title>
<defs>
<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker>
<marker id="arrow-bad" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{BAD}"/></marker>
<marker id="arrow-good" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{GOOD}"/></marker>
</defs>
<rect width="{WIDTH}" height="{height}" fill="white"/>
"##,
            escape(title)
        );
        Svg { body, height }
    }

    /// A rounded box with a fill.
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, stroke: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.2"/>"#
        );
    }

    /// One line of text. `anchor`: start, middle or end; `mono` for code.
    #[allow(clippy::too_many_arguments)]
    fn text(&mut self, x: f64, y: f64, s: &str, size: u32, anchor: &str, bold: bool, mono: bool) {
        self.text_coloured(x, y, s, size, anchor, bold, mono, INK);
    }

    #[allow(clippy::too_many_arguments)]
    fn text_coloured(
        &mut self,
        x: f64,
        y: f64,
        s: &str,
        size: u32,
        anchor: &str,
        bold: bool,
        mono: bool,
        colour: &str,
    ) {
        let weight = if bold { r#" font-weight="bold""# } else { "" };
        let family = if mono {
            r#" font-family="monospace""#
        } else {
            ""
        };
        let _ = writeln!(
            self.body,
            r#"<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" fill="{colour}"{weight}{family}>{}</text>"#,
            escape(s)
        );
    }

    /// Lines of text from `y` down, `step` apart. Text between backticks is
    /// set in monospace (at one pixel less, so that code and prose take about
    /// the same room); leading spaces indent a line by 7 px each.
    fn lines(&mut self, x: f64, y: f64, step: f64, lines: &[&str], size: u32, anchor: &str) {
        for (i, line) in lines.iter().enumerate() {
            let indent = line.len() - line.trim_start().len();
            let x = x + 7.0 * indent as f64;
            let mut spans = String::new();
            for (k, part) in line.trim_start().split('`').enumerate() {
                if part.is_empty() {
                    continue;
                }
                if k % 2 == 1 {
                    let _ = write!(
                        spans,
                        r#"<tspan font-family="monospace" font-size="{}">{}</tspan>"#,
                        size - 1,
                        escape(part)
                    );
                } else {
                    spans.push_str(&escape(part));
                }
            }
            let _ = writeln!(
                self.body,
                r#"<text x="{x}" y="{}" font-size="{size}" text-anchor="{anchor}" fill="{INK}">{spans}</text>"#,
                y + step * i as f64
            );
        }
    }

    /// A straight arrow; `style`: "" (ink), "bad" or "good"; `dashed` for a wait.
    #[allow(clippy::too_many_arguments)]
    fn arrow(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, style: &str, dashed: bool) {
        let (colour, marker) = match style {
            "bad" => (BAD, "arrow-bad"),
            "good" => (GOOD, "arrow-good"),
            _ => (INK, "arrow"),
        };
        let dash = if dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-width="1.6"{dash} marker-end="url(#{marker})"/>"#
        );
    }

    /// A vertical lifeline.
    fn lifeline(&mut self, x: f64, y1: f64, y2: f64) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="{MUTED}" stroke-width="1" stroke-dasharray="3 3"/>"#
        );
    }

    fn finish(mut self) -> String {
        let _ = self.height;
        self.body.push_str("</svg>\n");
        self.body
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The data path of a callback sent from another thread: `call_soon_threadsafe`
/// and the GIL, the queue lock, the deque, what each phase does with it, the
/// loop turn and the callback in its context; and the loop thread's own lane.
pub fn data_path() -> String {
    let mut s = Svg::new(
        560,
        "The data path of a callback from another thread, and of one from the loop thread",
    );
    // Columns: producer (left), shared state (middle), loop thread (right).
    let (px, mx, lx, w) = (10.0, 260.0, 510.0, 200.0);
    s.text(
        px + w / 2.0,
        22.0,
        "producer thread",
        15,
        "middle",
        true,
        false,
    );
    s.text(
        mx + w / 2.0,
        22.0,
        "shared: one lock",
        15,
        "middle",
        true,
        false,
    );
    s.text(lx + w / 2.0, 22.0, "loop thread", 15, "middle", true, false);

    // Producer: call_soon_threadsafe, then the push.
    s.rect(px, 36.0, w, 84.0, PRODUCER, INK);
    s.lines(
        px + 10.0,
        56.0,
        18.0,
        &[
            "`call_soon_threadsafe(cb)`",
            "holds the GIL; makes a",
            "Handle with a copy of the",
            "caller's `Context`",
        ],
        13,
        "start",
    );
    s.arrow(px + w / 2.0, 120.0, px + w / 2.0, 138.0, "", false);
    s.rect(px, 140.0, w, 124.0, PRODUCER, INK);
    s.lines(
        px + 10.0,
        160.0,
        18.0,
        &[
            "`try_push(handle)`",
            "lock free: append and",
            "return, GIL still held",
            "`Contended`: release the",
            "GIL, `push()` waits for the",
            "lock, then retakes the GIL",
        ],
        13,
        "start",
    );
    s.arrow(px + w, 200.0, mx - 2.0, 200.0, "", false);

    // Shared: the lock, the deque and the flags; the wake-up.
    s.rect(mx, 140.0, w, 148.0, SHARED, INK);
    s.lines(
        mx + w / 2.0,
        160.0,
        18.0,
        &["`Mutex<Pending>`"],
        14,
        "middle",
    );
    s.lines(
        mx + 10.0,
        182.0,
        18.0,
        &[
            "`items: VecDeque<Handle>`",
            "`sleeping`, `woken`, `closed`",
            "`append`: `push_back`; if",
            "`sleeping`, clear it and,",
            "once unlocked, wake the",
            "loop:",
        ],
        13,
        "start",
    );
    s.arrow(mx + w / 2.0, 288.0, mx + w / 2.0, 306.0, "", false);
    s.rect(mx, 308.0, w, 48.0, SHARED, INK);
    s.lines(
        mx + w / 2.0,
        327.0,
        18.0,
        &[
            "notify the condvar (3.1.3+)",
            "or write the eventfd (3.2.1)",
        ],
        13,
        "middle",
    );

    // Loop thread: the turn.
    s.rect(lx, 36.0, w, 262.0, LOOP, INK);
    s.text(
        lx + w / 2.0,
        56.0,
        "one turn of the loop",
        14,
        "middle",
        true,
        false,
    );
    s.lines(
        lx + 10.0,
        80.0,
        19.0,
        &[
            "1. timers due → the lane",
            "2. run the lane: what the",
            "   loop scheduled itself",
            "3. `run_batch`: lock, then",
            "   at most 128 callbacks:",
            "   3.1.1–3: under the lock",
            "   3.1.4: moved out first",
            "   3.1.5+: swap the deque",
            "4. idle: wait (naps, back-",
            "   off, condvar or epoll)",
        ],
        13,
        "start",
    );
    // The loop takes the lock (item 3); a producer's wake reaches its wait (item 4).
    s.arrow(lx - 2.0, 148.0, mx + w + 2.0, 176.0, "", false);
    s.arrow(mx + w + 2.0, 332.0, lx - 2.0, 258.0, "", true);
    s.text(mx + w + 8.0, 352.0, "wakes", 12, "start", false, false);

    s.arrow(lx + w / 2.0, 298.0, lx + w / 2.0, 386.0, "", false);
    s.rect(lx, 388.0, w, 66.0, LOOP, INK);
    s.lines(
        lx + 10.0,
        408.0,
        18.0,
        &[
            "the callback runs in its",
            "`Context`, GIL held; errors",
            "go to the exception handler",
        ],
        13,
        "start",
    );

    // The loop thread's own call_soon: the lane, no lock.
    s.rect(px, 388.0, 450.0, 66.0, LOOP, INK);
    s.lines(
        px + 10.0,
        408.0,
        18.0,
        &[
            "`call_soon(cb)` on the loop thread (every Future completion,",
            "every task step) appends to the loop's own lane, a plain",
            "`VecDeque`: no lock, so nothing run under the lock waits for it.",
        ],
        13,
        "start",
    );
    s.arrow(px + 450.0, 400.0, lx - 2.0, 102.0, "", false);

    for (i, line) in [
        "Whoever may wait for the queue lock waits without the GIL; the loop never holds",
        "the queue lock while it waits for the GIL. Only calls from other threads, while",
        "the loop runs, cross the lock: that is where the phases differ.",
    ]
    .iter()
    .enumerate()
    {
        s.text_coloured(
            WIDTH as f64 / 2.0,
            488.0 + 19.0 * i as f64,
            line,
            13,
            "middle",
            false,
            false,
            MUTED,
        );
    }
    s.finish()
}

/// One step of a timeline: the thread's column (0 loop, 1 producer), the text
/// lines, and a colour ("" ink, "bad", "good").
type Step<'a> = (usize, &'a [&'a str], &'a str);

/// A timeline with two lifelines across the whole width, from `y0` down;
/// returns the `y` below it.
fn timeline(s: &mut Svg, title: &str, steps: &[Step<'_>], y0: f64) -> f64 {
    let width = WIDTH as f64;
    let col = |i: usize| 40.0 + (width - 50.0) * (0.25 + 0.5 * i as f64);
    s.text(10.0, y0, title, 14, "start", true, false);
    s.text(col(0), y0 + 24.0, "loop thread", 13, "middle", true, false);
    s.text(
        col(1),
        y0 + 24.0,
        "producer thread",
        13,
        "middle",
        true,
        false,
    );
    let mut y = y0 + 36.0;
    let top = y;
    let box_w = (width - 50.0) * 0.5 - 16.0;
    let mut boxes = Vec::new();
    for (who, lines, style) in steps {
        let h = 10.0 + 18.0 * lines.len() as f64;
        boxes.push((*who, y, h, *lines, *style));
        y += h + 8.0;
    }
    s.lifeline(col(0), top, y);
    s.lifeline(col(1), top, y);
    s.arrow(20.0, top, 20.0, y, "", false);
    for (who, by, h, lines, style) in boxes {
        let x = col(who) - box_w / 2.0;
        let (fill, stroke) = match style {
            "bad" => ("#fbe9e7", BAD),
            "good" => ("#e8f5e9", GOOD),
            _ => (if who == 0 { LOOP } else { PRODUCER }, INK),
        };
        s.rect(x, by, box_w, h, fill, stroke);
        s.lines(x + 10.0, by + 19.0, 18.0, lines, 13, "start");
    }
    y
}

/// The lost wake-up of the original's 3.1.3 above the protocol that prevents
/// it: two timelines, time running down.
pub fn lost_wake_up() -> String {
    let mut s = Svg::new(
        612,
        "The lost wake-up of a flag reset outside the lock, and 3.1.3's protocol",
    );
    let before: [Step<'_>; 5] = [
        (0, &["`try_recv()`: the channel is empty"], ""),
        (1, &["`send(cb)`; `has_work = true`"], ""),
        (1, &["`notify_one()`: nobody waits yet, lost"], "bad"),
        (
            0,
            &[
                "`has_work = false`: the only trace of",
                "the push is erased",
            ],
            "bad",
        ),
        (
            0,
            &[
                "`wait()`: asleep with `cb` queued, until",
                "a timeout (1 ms) if there is one",
            ],
            "bad",
        ),
    ];
    let after: [Step<'_>; 5] = [
        (0, &["`lock()`; `items` empty: `sleeping = true`"], ""),
        (
            0,
            &[
                "`wait(guard)` unlocks and registers",
                "the waiter in one atomic step",
            ],
            "good",
        ),
        (1, &["`lock()`, free only now; `push_back(cb)`"], ""),
        (
            1,
            &[
                "finds `sleeping`: clears it,",
                "`notify_one()`, then unlocks",
            ],
            "good",
        ),
        (0, &["woken, relocks, finds `cb`, runs it"], "good"),
    ];
    let y = timeline(
        &mut s,
        "The original: a flag reset outside the lock",
        &before,
        20.0,
    );
    let y = timeline(
        &mut s,
        "3.1.3 here: both sides decide under the queue lock",
        &after,
        y + 28.0,
    );
    s.text_coloured(
        10.0,
        y + 24.0,
        "Time runs down. Above, a push falls between the loop's look and its reset; below, none",
        13,
        "start",
        false,
        false,
        MUTED,
    );
    s.text_coloured(
        10.0,
        y + 42.0,
        "can fall between the look and the sleep: the lock is held from one to the other.",
        13,
        "start",
        false,
        false,
        MUTED,
    );
    s.finish()
}

/// The deadlock of a producer that waits for the queue lock while holding the
/// GIL, in a phase that runs callbacks under that lock; and the fix. Drawn as
/// a wait-for graph: a cycle is a deadlock.
pub fn gil_deadlock() -> String {
    let mut s = Svg::new(
        420,
        "The GIL and the queue lock: a cycle of waits, and how try_push breaks it",
    );
    let half = WIDTH as f64 / 2.0;
    for (i, (title, fixed)) in [
        ("Waiting for the lock with the GIL held", false),
        ("try_push, then wait without the GIL", true),
    ]
    .iter()
    .enumerate()
    {
        let x0 = i as f64 * half;
        s.text(x0 + half / 2.0, 22.0, title, 14, "middle", true, false);
        let (bw, bh) = (140.0, 52.0);
        let (left, right) = (x0 + 12.0, x0 + half - 12.0 - bw);
        let (top, bottom) = (44.0, 194.0);
        // Loop thread (top left), GIL (top right), producer (bottom right),
        // queue lock (bottom left).
        s.rect(left, top, bw, bh, LOOP, INK);
        s.lines(
            left + bw / 2.0,
            top + 21.0,
            18.0,
            &["loop thread", "in a batch"],
            13,
            "middle",
        );
        s.rect(right, top, bw, bh, SHARED, INK);
        s.text(
            right + bw / 2.0,
            top + 31.0,
            "GIL",
            14,
            "middle",
            true,
            false,
        );
        s.rect(right, bottom, bw, bh, PRODUCER, INK);
        s.lines(
            right + bw / 2.0,
            bottom + 21.0,
            18.0,
            &["producer in", "`call_soon_threadsafe`"],
            12,
            "middle",
        );
        s.rect(left, bottom, bw, bh, SHARED, INK);
        s.text(
            left + bw / 2.0,
            bottom + 31.0,
            "queue lock",
            14,
            "middle",
            true,
            false,
        );
        // The loop waits for the GIL (it let it go at the switch interval).
        s.arrow(
            left + bw + 2.0,
            top + bh / 2.0,
            right - 2.0,
            top + bh / 2.0,
            "",
            true,
        );
        s.text(
            half / 2.0 + x0,
            top + bh / 2.0 - 6.0,
            "waits for",
            12,
            "middle",
            false,
            false,
        );
        // The queue lock is held by the loop (3.1.1–3.1.3 run the batch under it).
        s.arrow(
            left + bw / 2.0,
            bottom - 2.0,
            left + bw / 2.0,
            top + bh + 2.0,
            "",
            false,
        );
        s.text(
            left + bw / 2.0 + 6.0,
            (top + bh + bottom) / 2.0 + 4.0,
            "held by",
            12,
            "start",
            false,
            false,
        );
        if *fixed {
            s.text_coloured(
                right + bw / 2.0,
                (top + bh + bottom) / 2.0 + 4.0,
                "GIL released first",
                12,
                "middle",
                false,
                false,
                GOOD,
            );
            s.arrow(
                right - 2.0,
                bottom + bh / 2.0,
                left + bw + 2.0,
                bottom + bh / 2.0,
                "good",
                true,
            );
            s.text_coloured(
                half / 2.0 + x0,
                bottom + bh / 2.0 - 6.0,
                "waits for",
                12,
                "middle",
                false,
                false,
                GOOD,
            );
        } else {
            // The GIL is held by the producer, which waits for the queue lock.
            s.arrow(
                right + bw / 2.0,
                top + bh + 2.0,
                right + bw / 2.0,
                bottom - 2.0,
                "",
                false,
            );
            s.text(
                right + bw / 2.0 - 6.0,
                (top + bh + bottom) / 2.0 + 4.0,
                "held by",
                12,
                "end",
                false,
                false,
            );
            s.arrow(
                right - 2.0,
                bottom + bh / 2.0,
                left + bw + 2.0,
                bottom + bh / 2.0,
                "bad",
                true,
            );
            s.text_coloured(
                half / 2.0 + x0,
                bottom + bh / 2.0 - 6.0,
                "waits for",
                12,
                "middle",
                false,
                false,
                BAD,
            );
        }
        let notes: &[&str] = if *fixed {
            &[
                "`try_push` with the GIL held; on",
                "`Contended`, let the GIL go (`py.detach`)",
                "and only then wait in `push`. The loop",
                "gets the GIL back, ends its batch and",
                "unlocks: no cycle. From 3.1.4 on, the",
                "batch runs after unlocking anyway.",
            ]
        } else {
            &[
                "The loop holds the queue lock for a",
                "whole batch and needs the GIL for each",
                "callback. At the switch interval the",
                "producer gets the GIL, then blocks on",
                "the lock. Each waits for the other: a",
                "cycle, and the process hangs.",
            ]
        };
        s.lines(x0 + 14.0, 282.0, 19.0, notes, 13, "start");
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagrams_are_svg_of_the_book_width() {
        for svg in [data_path(), lost_wake_up(), gil_deadlock()] {
            assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
            assert!(svg.contains(&format!(r#"width="{WIDTH}""#)));
            assert!(svg.trim_end().ends_with("</svg>"));
            // Escaped, so the document is well-formed XML.
            assert!(!svg.contains("<Pending>") && !svg.contains("Mutex<P"));
        }
    }

    #[test]
    fn the_diagrams_name_the_code() {
        let d = data_path();
        for name in [
            "call_soon_threadsafe",
            "try_push",
            "VecDeque&lt;Handle&gt;",
            "eventfd",
        ] {
            assert!(d.contains(name), "{name}");
        }
        assert!(lost_wake_up().contains("sleeping = true"));
        assert!(gil_deadlock().contains("py.detach"));
    }
}
