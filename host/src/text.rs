//! Text from outside (a plugin's error, a statement, a log line, an alert's reason) cut to a
//! bound before it is stored, logged or sent: one rule for every such place, so a reader always
//! sees the same mark and knows how much was missing. (A table column for a terminal, such as
//! `projector dlq list`, shortens for width with a plain "…" instead: the whole text is one
//! `dlq show` away.)

use std::borrow::Cow;

/// `text`, or its start and a note of its whole length when it is longer than `limit` bytes;
/// never longer than `limit` (or than the note, for a tiny limit), never cut inside a character.
pub fn cut(text: &str, limit: usize) -> Cow<'_, str> {
    if text.len() <= limit {
        return Cow::Borrowed(text);
    }
    let note = format!(" … [cut from {} bytes]", text.len());
    let kept = text.floor_char_boundary(limit.saturating_sub(note.len()));
    Cow::Owned(format!("{}{note}", &text[..kept]))
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn long_text_is_cut_to_the_bound_on_a_character_with_its_length_noted() {
        assert_eq!(cut("short", 10), "short");
        let long = "é".repeat(100);
        let kept = cut(&long, 60);
        assert!(kept.len() <= 60, "{kept}");
        assert!(
            kept.starts_with("éé") && kept.ends_with(" … [cut from 200 bytes]"),
            "{kept}"
        );
    }
}
