//! The streams a group keeps its state in, named and shaped as the real server's are, so tools
//! that read them (and people looking at `$all`) see the same thing:
//! - `$persistentsubscription-{source}::{group}-checkpoint`: `$SubscriptionCheckpoint` events
//!   whose JSON string data is the last revision (`"41"`) or position (`"C:41/P:41"`) every
//!   earlier message was settled up to; `$maxCount` 2.
//! - `$persistentsubscription-{source}::{group}-parked`: one `$>` link (`"{revision}@{stream}"`)
//!   per parked message, with the reason in its metadata; replaying moves the stream's `$tb`
//!   past what was replayed.
//! - `$persistentSubscriptionConfig`: `$PersistentConfig` events, each the whole list of groups
//!   (devstore's own JSON shape), the newest one in force.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::settings::{Settings, Source};
use crate::store::{ProposedEvent, RecordedEvent};

/// The stream holding every group's definition.
pub const CONFIG_STREAM: &str = "$persistentSubscriptionConfig";

/// Event type of a config record.
const CONFIG_EVENT_TYPE: &str = "$PersistentConfig";

/// Event type of a checkpoint record.
const CHECKPOINT_EVENT_TYPE: &str = "$SubscriptionCheckpoint";

/// Event type of a link (a parked message).
pub const LINK_EVENT_TYPE: &str = "$>";

/// Version of devstore's config JSON.
const CONFIG_VERSION: u32 = 1;

/// The id the real server gives a group: `{stream}::{group}`, also the confirmation's
/// subscription id.
pub fn subscription_id(source: &Source, group: &str) -> String {
    format!("{}::{group}", source.name())
}

/// The group's checkpoint stream.
pub fn checkpoint_stream(source: &Source, group: &str) -> String {
    format!(
        "$persistentsubscription-{}-checkpoint",
        subscription_id(source, group)
    )
}

/// The group's parked-message stream.
pub fn parked_stream(source: &Source, group: &str) -> String {
    format!(
        "$persistentsubscription-{}-parked",
        subscription_id(source, group)
    )
}

/// A revision or position as the real server writes it in checkpoints and info.
pub fn position_text(source: &Source, key: u64) -> String {
    match source {
        Source::Stream(_) => key.to_string(),
        Source::All => format!("C:{key}/P:{key}"),
    }
}

/// A checkpoint record for `key`.
pub fn checkpoint(source: &Source, key: u64) -> ProposedEvent {
    proposed(
        CHECKPOINT_EVENT_TYPE,
        true,
        json!(position_text(source, key)).to_string(),
        String::new(),
    )
}

/// The key a checkpoint record holds, if it is one devstore (or the real server) wrote.
pub fn parse_checkpoint(event: &RecordedEvent) -> Option<u64> {
    let text: String = serde_json::from_slice(&event.data).ok()?;
    if let Ok(revision) = text.parse() {
        return Some(revision);
    }
    let commit = text.strip_prefix("C:")?.split('/').next()?;
    commit.parse().ok()
}

/// The metadata the real server means to give a checkpoint stream (two records kept, admins
/// only), hiding revisions below `truncate_before` (a deleted group's old checkpoints).
pub fn checkpoint_stream_metadata(truncate_before: u64) -> ProposedEvent {
    metadata(json!({
        "$maxCount": 2,
        "$tb": truncate_before,
        "$acl": {"$r": "$admins", "$w": "$admins", "$d": "$admins", "$mr": "$all", "$mw": "$admins"}
    }))
}

/// The metadata of a parked stream, hiding revisions below `truncate_before`.
pub fn parked_stream_metadata(truncate_before: u64) -> ProposedEvent {
    metadata(json!({
        "$tb": truncate_before,
        "$acl": {"$r": "$admins", "$w": "$admins", "$d": "$admins", "$mr": "$admins", "$mw": "$admins"}
    }))
}

/// A parked-message link to `event`, with why it was parked.
pub fn parked(event: &RecordedEvent, reason: &str) -> ProposedEvent {
    let added = chrono_like_now();
    proposed(
        LINK_EVENT_TYPE,
        false,
        format!("{}@{}", event.revision, event.stream),
        json!({"added": added, "reason": reason, "subscriptionEventNumber": event.revision})
            .to_string(),
    )
}

/// The revision and stream a link points to.
pub fn parse_link(event: &RecordedEvent) -> Option<(u64, String)> {
    let text = std::str::from_utf8(&event.data).ok()?;
    let (revision, stream) = text.split_once('@')?;
    Some((revision.parse().ok()?, stream.to_owned()))
}

/// One group as the config stream keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// What it reads.
    pub source: Source,
    /// Its name.
    pub group: String,
    /// Its settings.
    pub settings: Settings,
}

/// The config record for `entries`.
pub fn config(entries: Vec<Entry>) -> ProposedEvent {
    let data = json!({"version": CONFIG_VERSION, "entries": entries}).to_string();
    proposed(CONFIG_EVENT_TYPE, true, data, String::new())
}

/// The groups a config record lists.
pub fn parse_config(event: &RecordedEvent) -> anyhow::Result<Vec<Entry>> {
    #[derive(Deserialize)]
    struct Config {
        version: u32,
        entries: Vec<Entry>,
    }
    let config: Config = serde_json::from_slice(&event.data)?;
    anyhow::ensure!(
        config.version == CONFIG_VERSION,
        "persistent subscription config version {} is not {CONFIG_VERSION}",
        config.version
    );
    Ok(config.entries)
}

fn metadata(data: serde_json::Value) -> ProposedEvent {
    proposed("$metadata", true, data.to_string(), String::new())
}

fn proposed(event_type: &str, is_json: bool, data: String, metadata: String) -> ProposedEvent {
    ProposedEvent {
        id: uuid::Uuid::new_v4(),
        event_type: event_type.to_owned(),
        is_json,
        custom_metadata: metadata.into(),
        data: data.into(),
    }
}

/// Now as an ISO-8601 UTC time, for parked-message metadata.
fn chrono_like_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// Year, month and day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
    }
}
