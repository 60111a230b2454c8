//! Text for people: aligned tables, colour on a terminal, times as "12s ago" and "in 14m05s".

use std::fmt::Write as _;
use std::io::IsTerminal;

use crate::clock::Timestamp;

/// Whether stdout gets colour: only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>).
pub fn color_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// How a cell stands out on a colour terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    Plain,
    Red,
    Yellow,
    Green,
    Cyan,
    Dim,
    Bold,
}

impl Paint {
    fn code(self) -> Option<&'static str> {
        match self {
            Paint::Plain => None,
            Paint::Red => Some("31"),
            Paint::Yellow => Some("33"),
            Paint::Green => Some("32"),
            Paint::Cyan => Some("36"),
            Paint::Dim => Some("2"),
            Paint::Bold => Some("1"),
        }
    }

    /// `text` in this paint when `color`, else as is.
    pub fn apply(self, text: &str, color: bool) -> String {
        match self.code() {
            Some(code) if color => format!("\x1b[{code}m{text}\x1b[0m"),
            _ => text.to_owned(),
        }
    }
}

pub struct Cell {
    text: String,
    paint: Paint,
}

impl Cell {
    pub fn new(text: impl Into<String>, paint: Paint) -> Self {
        Self {
            text: text.into(),
            paint,
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::new(text, Paint::Plain)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::new(text, Paint::Plain)
    }
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self, color: bool) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.text.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self
            .header
            .iter()
            .map(|h| Cell::new(*h, Paint::Bold))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (at, cell) in row.iter().enumerate().take(columns) {
                if at > 0 {
                    line.push_str("  ");
                }
                line.push_str(&cell.paint.apply(&cell.text, color));
                if at + 1 < columns {
                    let pad = widths[at].saturating_sub(cell.text.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// How long ago `then` was: "12s ago", "4m ago", "3h ago", "2d ago".
pub fn ago(now: Timestamp, then: Timestamp) -> String {
    let seconds = then.seconds_until(now);
    let amount = match seconds {
        0..60 => format!("{seconds}s"),
        60..3_600 => format!("{}m", seconds / 60),
        3_600..86_400 => format!("{}h", seconds / 3_600),
        _ => format!("{}d", seconds / 86_400),
    };
    format!("{amount} ago")
}

/// Time left until `until`: "in 45s", "in 14m05s", "in 2h05m", or "expired".
pub fn countdown(now: Timestamp, until: Timestamp) -> String {
    if until <= now {
        return "expired".to_owned();
    }
    let seconds = now.seconds_until(until);
    match seconds {
        0..60 => format!("in {seconds}s"),
        60..3_600 => format!("in {}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("in {}h{:02}m", seconds / 3_600, seconds % 3_600 / 60),
    }
}

/// The time of day of `at`, in UTC: "14:05:12 UTC".
pub fn clock(at: Timestamp) -> String {
    let text = at.to_string();
    format!("{} UTC", text.get(11..19).unwrap_or(&text))
}

/// One line of at most `max` characters: line breaks become spaces, the rest becomes "…".
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell_without_trailing_blanks() {
        let mut table = Table::new(&["NAME", "STATE"]);
        table.row(vec!["auth-implementation".into(), "active".into()]);
        table.row(vec!["ui".into(), Cell::new("stale", Paint::Yellow)]);
        assert_eq!(
            table.render(false),
            "NAME                 STATE\nauth-implementation  active\nui                   stale\n"
        );
        let colored = table.render(true);
        assert!(colored.contains("\x1b[33mstale\x1b[0m"));
        assert!(colored.starts_with("\x1b[1mNAME\x1b[0m                 \x1b[1mSTATE"));
    }

    #[test]
    fn times_read_as_people_say_them() {
        let now = Timestamp::from_millis(10_000_000);
        let back = |s: i64| Timestamp::from_millis(10_000_000 - s * 1000);
        let ahead = |s: i64| Timestamp::from_millis(10_000_000 + s * 1000);
        assert_eq!(ago(now, back(12)), "12s ago");
        assert_eq!(ago(now, back(300)), "5m ago");
        assert_eq!(ago(now, back(7_200)), "2h ago");
        assert_eq!(countdown(now, ahead(45)), "in 45s");
        assert_eq!(countdown(now, ahead(845)), "in 14m05s");
        assert_eq!(countdown(now, ahead(7_500)), "in 2h05m");
        assert_eq!(countdown(now, back(1)), "expired");
        assert_eq!(
            clock(Timestamp::from_millis(1_795_000_000_000)),
            "11:06:40 UTC"
        );
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
    }
}
