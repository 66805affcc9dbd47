//! Human output: compact, aligned, local times, colour only on a terminal without NO_COLOR.

use std::io::IsTerminal;

use chrono::{DateTime, Local, Utc};

use crate::proto::Timestamp;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    pub fn detect() -> Style {
        Style {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    pub fn accent(&self, text: &str) -> String {
        self.paint("36", text)
    }
}

/// "14:05" today, "2026-11-25 14:05" before, in local time.
pub fn when(t: &Timestamp) -> String {
    when_at(t.0, Utc::now())
}

fn when_at(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Local);
    if local.date_naive() == now.with_timezone(&Local).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// One line of text, shortened to `max` characters with an ellipsis.
pub fn snippet(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    let more = line.chars().count() > max || text.lines().nth(1).is_some();
    let mut out: String = line.chars().take(max).collect();
    if more {
        out.push('…');
    }
    out
}

/// Rows padded into columns.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(visible_len(cell));
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - visible_len(cell) + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Characters a cell shows, not counting colour escapes.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_ignoring_colour() {
        let s = Style { color: true };
        let out = table(&[
            vec![s.bold("@al"), "1".into(), "x".into()],
            vec!["@bobby".into(), "22".into(), "y".into()],
        ]);
        let plain: Vec<String> = out
            .lines()
            .map(|l| l.replace("\x1b[1m", "").replace("\x1b[0m", ""))
            .collect();
        assert_eq!(plain, ["@al     1   x", "@bobby  22  y"]);
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(snippet("hello", 10), "hello");
        assert_eq!(snippet("hello world", 5), "hello…");
        assert_eq!(snippet("one\ntwo", 10), "one…");
    }
}
