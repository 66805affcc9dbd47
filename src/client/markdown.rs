//! Rich text on a terminal: the Markdown people type in chat (bold, italic, `code`, fenced code
//! with syntax colours, links, lists, quotes) as terminal styles. Used only where colour is (a
//! terminal without NO_COLOR): piped output and `--json` show the text as typed. Parsing is
//! pulldown-cmark's; colours for code are syntect's (its bundled grammars, pure-Rust regexes).

use std::sync::OnceLock;

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use syntect::easy::HighlightLines;
use syntect::highlighting::{Theme, ThemeSet};
use syntect::parsing::SyntaxSet;
use syntect::util::{LinesWithEndings, as_24_bit_terminal_escaped};

const BOLD: &str = "\x1b[1m";
const NOT_BOLD: &str = "\x1b[22m";
const ITALIC: &str = "\x1b[3m";
const NOT_ITALIC: &str = "\x1b[23m";
const UNDERLINE: &str = "\x1b[4m";
const NOT_UNDERLINE: &str = "\x1b[24m";
const CODE: &str = "\x1b[36m";
const NOT_CODE: &str = "\x1b[39m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// Where the text being written goes: the message, or a quote or list item being gathered.
struct Writer {
    /// Gathered blocks, innermost last (a quote is prefixed once it ends).
    out: Vec<String>,
    /// Each list open: the next number (None: bullets).
    lists: Vec<Option<u64>>,
    /// Inside a fenced or indented block: its language and text so far.
    code: Option<(String, String)>,
    /// The link being written and its address.
    link: Option<String>,
}

impl Writer {
    fn push(&mut self, text: &str) {
        self.out.last_mut().expect("a block").push_str(text);
    }

    fn line_break(&mut self) {
        let current = self.out.last_mut().expect("a block");
        if !current.is_empty() && !current.ends_with('\n') {
            current.push('\n');
        }
    }
}

/// `text` with its Markdown as terminal styles; lines joined with `\n`, no trailing newline.
pub fn render(text: &str) -> String {
    let mut w = Writer {
        out: vec![String::new()],
        lists: Vec::new(),
        code: None,
        link: None,
    };
    for event in Parser::new(text) {
        if let Some((_, code)) = &mut w.code {
            match event {
                Event::Text(t) => code.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    let (lang, code) = w.code.take().expect("in a code block");
                    w.line_break();
                    w.push(&highlight(&lang, &code));
                    w.line_break();
                }
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(tag) => start(&mut w, tag),
            Event::End(tag) => end(&mut w, tag),
            Event::Text(t) => w.push(&printable(&t)),
            Event::Code(t) => w.push(&format!("{CODE}{}{NOT_CODE}", printable(&t))),
            // Markup is shown as typed, never interpreted.
            Event::Html(t) | Event::InlineHtml(t) => w.push(&printable(&t)),
            Event::SoftBreak | Event::HardBreak => w.push("\n"),
            Event::Rule => {
                w.line_break();
                w.push(&format!("{DIM}────────{RESET}\n"));
            }
            _ => {}
        }
    }
    let rendered = w.out.concat();
    rendered.trim_end_matches('\n').to_string()
}

fn start(w: &mut Writer, tag: Tag<'_>) {
    match tag {
        Tag::Strong | Tag::Heading { .. } => w.push(BOLD),
        Tag::Emphasis => w.push(ITALIC),
        Tag::Link { dest_url, .. } => {
            w.push(UNDERLINE);
            w.link = Some(dest_url.to_string());
        }
        Tag::BlockQuote(_) => {
            w.line_break();
            w.out.push(String::new());
        }
        Tag::List(first) => {
            w.line_break();
            w.lists.push(first);
        }
        Tag::Item => {
            w.line_break();
            let depth = w.lists.len().saturating_sub(1);
            let marker = match w.lists.last_mut() {
                Some(Some(n)) => {
                    *n += 1;
                    format!("{}.", *n - 1)
                }
                _ => "•".to_string(),
            };
            w.push(&format!("{}{marker} ", "  ".repeat(depth)));
        }
        Tag::CodeBlock(kind) => {
            let lang = match kind {
                CodeBlockKind::Fenced(lang) => {
                    lang.split_whitespace().next().unwrap_or("").to_string()
                }
                CodeBlockKind::Indented => String::new(),
            };
            w.code = Some((lang, String::new()));
        }
        _ => {}
    }
}

fn end(w: &mut Writer, tag: TagEnd) {
    match tag {
        TagEnd::Strong => w.push(NOT_BOLD),
        TagEnd::Heading(_) => {
            w.push(NOT_BOLD);
            w.line_break();
        }
        TagEnd::Emphasis => w.push(NOT_ITALIC),
        TagEnd::Link => {
            w.push(NOT_UNDERLINE);
            if let Some(url) = w.link.take() {
                // The address, unless the link's text is the address.
                let shown = w
                    .out
                    .last()
                    .is_some_and(|t| t.ends_with(&format!("{url}{NOT_UNDERLINE}")));
                if !shown {
                    w.push(&format!(" {DIM}({}){RESET}", printable(&url)));
                }
            }
        }
        TagEnd::Paragraph | TagEnd::Item => w.line_break(),
        TagEnd::List(_) => {
            w.lists.pop();
            w.line_break();
        }
        TagEnd::BlockQuote(_) => {
            let quoted = w.out.pop().unwrap_or_default();
            let bar = format!("{DIM}│{RESET} ");
            let lines: Vec<String> = quoted
                .trim_end_matches('\n')
                .lines()
                .map(|l| format!("{bar}{l}"))
                .collect();
            w.push(&lines.join("\n"));
            w.push("\n");
        }
        _ => {}
    }
}

/// Text as it may reach a terminal: no escape sequences or other control characters from a
/// message (they could move the cursor, retitle the window or hide text).
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn theme() -> &'static Theme {
    static THEME: OnceLock<Theme> = OnceLock::new();
    THEME.get_or_init(|| {
        let mut themes = ThemeSet::load_defaults();
        themes
            .themes
            .remove("base16-ocean.dark")
            .unwrap_or_default()
    })
}

/// A fenced block in the colours of its language (by name or extension: `rust`, `rs`, `py`),
/// indented; a language nobody knows is plain.
fn highlight(lang: &str, code: &str) -> String {
    let code = printable(code);
    let set = syntaxes();
    let syntax = set
        .find_syntax_by_token(lang)
        .unwrap_or_else(|| set.find_syntax_plain_text());
    let mut lines = HighlightLines::new(syntax, theme());
    let mut out = String::new();
    for line in LinesWithEndings::from(&code) {
        let styled = match lines.highlight_line(line, set) {
            Ok(ranges) => as_24_bit_terminal_escaped(&ranges, false),
            Err(_) => line.to_string(),
        };
        out.push_str("  ");
        out.push_str(styled.trim_end_matches('\n'));
        out.push_str(RESET);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emphasis_and_code_become_styles() {
        assert_eq!(
            render("**bold** and *it*"),
            format!("{BOLD}bold{NOT_BOLD} and {ITALIC}it{NOT_ITALIC}")
        );
        assert_eq!(
            render("run `cargo test`"),
            format!("run {CODE}cargo test{NOT_CODE}")
        );
        assert_eq!(render("plain words"), "plain words");
    }

    #[test]
    fn fenced_code_is_coloured_by_its_language() {
        let shown = render("look:\n```rust\nfn main() {}\n```");
        assert!(shown.starts_with("look:\n  "), "{shown:?}");
        assert!(shown.contains("\x1b[38;2;"), "24-bit colours: {shown:?}");
        assert!(shown.contains("main"), "{shown:?}");
    }

    #[test]
    fn lists_quotes_and_links() {
        assert_eq!(render("- one\n- two"), "• one\n• two");
        assert_eq!(render("1. first\n2. second"), "1. first\n2. second");
        assert_eq!(render("> quoted"), format!("{DIM}│{RESET} quoted"));
        assert_eq!(
            render("[docs](https://example.com)"),
            format!("{UNDERLINE}docs{NOT_UNDERLINE} {DIM}(https://example.com){RESET}")
        );
    }

    #[test]
    fn markup_and_escapes_from_a_message_stay_harmless() {
        assert_eq!(render("<b>hi</b>"), "<b>hi</b>");
        assert_eq!(render("a\x1b]0;pwned\x07b"), "a]0;pwnedb");
    }
}
