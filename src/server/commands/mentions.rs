//! `@name` in a message's text: who it names. Only members of the room count (resolved by the
//! store); here, the names as written.

/// The distinct names written as `@name` (a username's letters: ASCII letters, digits, `_`, `.`,
/// `-`), in order. An `@` inside a word (an email address) names nobody, and a trailing `.` or `-`
/// is punctuation, not part of the name.
pub fn mentioned_names(text: &str) -> Vec<String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let mut names: Vec<String> = Vec::new();
    let mut previous: Option<char> = None;
    for (i, c) in text.char_indices() {
        let starts_word = previous.is_none_or(|p| !(p.is_alphanumeric() || p == '_'));
        previous = Some(c);
        if c != '@' || !starts_word {
            continue;
        }
        let rest = &text[i + 1..];
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let name = rest[..end].trim_end_matches(['.', '-']);
        if name.len() >= 3 && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_written_with_an_at() {
        assert_eq!(mentioned_names("hi @bob and @carol."), ["bob", "carol"]);
        assert_eq!(mentioned_names("@Bob @bob @BOB"), ["Bob"]);
        assert_eq!(mentioned_names("(@dave.smith-)"), ["dave.smith"]);
    }

    #[test]
    fn an_email_or_a_lone_at_names_nobody() {
        assert!(mentioned_names("mail bob@example.com").is_empty());
        assert!(mentioned_names("@ @@ @x").is_empty());
    }
}
