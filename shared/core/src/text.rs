//! Rendering attacker-controlled strings as plain text.
//!
//! Annotation values, object names and user agents come from whoever wrote the
//! object. Printed raw, a newline forges extra output lines and an ANSI escape
//! rewrites the reader's terminal, so every such string passes through
//! [`escape`] before it reaches text output. JSON output needs no help: the
//! serialiser escapes control characters itself.

use std::borrow::Cow;
use std::fmt::Write;

/// Escapes control characters (C0, DEL, C1, including ESC and newlines) and
/// Unicode bidirectional overrides as `\u{…}`, leaving other text untouched.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`], then Markdown and HTML made inert: `&`, `<`, `>` become
/// entities and Markdown punctuation is backslash-escaped, so a hostile
/// annotation renders as the text it is in chat, e-mail and web views.
pub fn escape_markup(s: &str) -> Cow<'_, str> {
    let plain = escape(s);
    if !plain.chars().any(|c| MARKUP.contains(&c)) {
        return plain;
    }
    let mut out = String::with_capacity(plain.len() + 16);
    for c in plain.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if MARKUP.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape_markup`] for chat: also breaks `@` so a name like `@channel`
/// or `@here` cannot notify anyone.
pub fn escape_chat(s: &str) -> Cow<'_, str> {
    let marked = escape_markup(s);
    if marked.contains('@') { Cow::Owned(marked.replace('@', "@\u{200b}")) } else { marked }
}

const MARKUP: &[char] = &['&', '<', '>', '\\', '`', '*', '_', '[', ']', '|', '~', '#'];

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(escape("web-01.example.com"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn markup_is_made_inert() {
        assert_eq!(super::escape_markup("web.example.com"), "web.example.com");
        assert_eq!(
            super::escape_markup("<img src=x onerror=alert(1)> [click](http://evil) *bold*\n"),
            "&lt;img src=x onerror=alert(1)&gt; \\[click\\](http://evil) \\*bold\\*\\\\u{a}"
        );
        assert_eq!(super::escape_markup("a\u{1b}[2J"), "a\\\\u{1b}\\[2J");
    }

    #[test]
    fn chat_mentions_cannot_notify() {
        assert_eq!(super::escape_chat("@here <!channel>"), "@\u{200b}here &lt;!channel&gt;");
    }

    #[test]
    fn newlines_ansi_and_bidi_overrides_are_escaped() {
        assert_eq!(escape("a\nb"), "a\\u{a}b");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
    }
}
