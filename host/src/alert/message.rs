//! One alert: its log line and the JSON document POSTed for it (the format is documented in
//! docs/operations.md, "Alerts"; receivers parse it, so fields are only ever added).

use std::borrow::Cow;
use std::time::SystemTime;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::debounce::Window;

/// The most bytes of any text field. Errors can embed whole events or SQL; chat webhooks refuse
/// large messages, and a person reads the start anyway.
pub(super) const MAX_TEXT_BYTES: usize = 4096;

/// An alert, ready to log and to send.
pub(super) struct Alert {
    document: Document,
}

#[derive(Serialize)]
struct Document {
    #[serde(flatten)]
    what: What,
    /// When the alert was raised, RFC 3339 in UTC.
    at: String,
    /// Tells these alerts apart from other senders on a shared webhook.
    host: &'static str,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum What {
    ProjectionStopped {
        projection: String,
        reason: String,
    },
    DeadLetters {
        projection: String,
        count: u64,
        first_error: String,
        /// When the window began: its first dead letter.
        since: String,
    },
}

impl Alert {
    pub fn stopped(projection: &str, reason: &str, now: SystemTime) -> Alert {
        Alert::new(
            What::ProjectionStopped {
                projection: cut(projection).into_owned(),
                reason: cut(reason).into_owned(),
            },
            now,
        )
    }

    pub fn dead_letters(window: &Window, now: SystemTime) -> Alert {
        Alert::new(
            What::DeadLetters {
                projection: cut(&window.projection).into_owned(),
                count: window.count,
                first_error: window.first_error.clone(),
                since: rfc3339(window.since),
            },
            now,
        )
    }

    fn new(what: What, now: SystemTime) -> Alert {
        Alert {
            document: Document {
                what,
                at: rfc3339(now),
                host: "projector",
            },
        }
    }

    /// The one log line of this alert.
    pub fn log(&self) {
        match &self.document.what {
            What::ProjectionStopped { projection, reason } => {
                tracing::error!(projection, reason, "alert: projection stopped")
            }
            What::DeadLetters {
                projection,
                count,
                first_error,
                since,
            } => tracing::error!(projection, count, first_error, since, "alert: dead letters"),
        }
    }

    /// What it is about, for the log lines of its delivery.
    pub fn summary(&self) -> (&'static str, &str) {
        match &self.document.what {
            What::ProjectionStopped { projection, .. } => ("projection-stopped", projection),
            What::DeadLetters { projection, .. } => ("dead-letters", projection),
        }
    }

    /// The JSON document to POST.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.document).expect("an alert is plain strings and numbers")
    }
}

/// `text` cut to the bound of an alert's text fields.
pub(super) fn cut(text: &str) -> Cow<'_, str> {
    crate::text::cut(text, MAX_TEXT_BYTES)
}

fn rfc3339(time: SystemTime) -> String {
    let time = OffsetDateTime::from(time);
    // Milliseconds are precise enough for a person (RFC 3339 drops trailing zeros, so the
    // field's length varies).
    let time = time.replace_millisecond(time.millisecond()).unwrap_or(time);
    time.format(&Rfc3339)
        .expect("a system time after 1970 has an RFC 3339 form")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert!(matches!(cut("disk full"), Cow::Borrowed("disk full")));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_its_length() {
        let text = "é".repeat(3000);
        let kept = cut(&text);
        assert!(kept.len() <= MAX_TEXT_BYTES, "{}", kept.len());
        assert!(kept.len() > MAX_TEXT_BYTES - 64, "{}", kept.len());
        assert!(kept.ends_with(" … [cut from 6000 bytes]"), "{kept}");
        assert!(kept.starts_with("éé"));
    }

    #[test]
    fn the_document_is_small_and_flat() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let body = Alert::stopped("orders", "memory limit", at).body();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"kind":"projection-stopped","projection":"orders","reason":"memory limit","at":"2023-11-14T22:13:20.123Z","host":"projector"}"#
        );
    }
}
