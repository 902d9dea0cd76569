//! What a group tells the outside: the events it sends (`ReadResp`) and its statistics
//! (`SubscriptionInfo`) in the real server's formats.

use super::group::{Group, Message};
use super::records::position_text;
use super::settings::{Source, Start};
use crate::grpc::convert::{UuidFormat, event_metadata, stream_identifier};
use crate::proto::persistent_subscriptions::read_resp::{self, ReadEvent, read_event};
use crate::proto::persistent_subscriptions::subscription_info::ConnectionInfo;
use crate::proto::persistent_subscriptions::{ReadResp, SubscriptionInfo};
use crate::store::RecordedEvent;

/// A message as a consumer receives it.
pub fn read_event(message: &Message, format: UuidFormat) -> ReadResp {
    let event = ReadEvent {
        event: Some(recorded(&message.event, format)),
        link: message.link.as_ref().map(|link| recorded(link, format)),
        position: Some(read_event::Position::CommitPosition(
            message.link.as_ref().unwrap_or(&message.event).position,
        )),
        count: Some(read_event::Count::RetryCount(
            i32::try_from(message.retry_count).unwrap_or(i32::MAX),
        )),
    };
    ReadResp {
        content: Some(read_resp::Content::Event(event)),
    }
}

fn recorded(event: &RecordedEvent, format: UuidFormat) -> read_event::RecordedEvent {
    let metadata = event_metadata(event);
    read_event::RecordedEvent {
        id: Some(format.encode(event.id)),
        stream_identifier: Some(stream_identifier(&event.stream)),
        stream_revision: event.revision,
        prepare_position: event.position,
        commit_position: event.position,
        metadata,
        custom_metadata: event.custom_metadata.clone(),
        data: event.data.clone(),
    }
}

/// The group's statistics and settings.
pub fn of(group: &Group, parked: u64) -> SubscriptionInfo {
    let settings = &group.settings;
    let source = &group.source;
    let clamp = |value: u64| i32::try_from(value).unwrap_or(i32::MAX);
    let connections = group
        .consumers
        .iter()
        .map(|consumer| ConnectionInfo {
            from: consumer.from.clone(),
            username: consumer.username.clone(),
            average_items_per_second: 0,
            total_items: consumer.delivered as i64,
            count_since_last_measurement: 0,
            observed_measurements: Vec::new(),
            available_slots: clamp(u64::from(consumer.slots.saturating_sub(consumer.in_flight))),
            in_flight_messages: clamp(u64::from(consumer.in_flight)),
            connection_name: consumer.connection_name.clone(),
        })
        .collect();
    let in_flight = group.in_flight_count() as u64;
    SubscriptionInfo {
        event_source: source.name().to_owned(),
        group_name: group.name.clone(),
        status: status(group),
        connections,
        average_per_second: 0,
        total_items: group.delivered as i64,
        count_since_last_measurement: 0,
        last_checkpointed_event_position: group
            .checkpoint
            .map(|key| position_text(source, key))
            .unwrap_or_default(),
        last_known_event_position: group
            .last_known
            .map(|key| position_text(source, key))
            .unwrap_or_default(),
        resolve_link_tos: settings.resolve_links,
        start_from: start_text(source, settings.start),
        message_timeout_milliseconds: clamp(settings.message_timeout_ms),
        extra_statistics: settings.extra_statistics,
        max_retry_count: clamp(u64::from(settings.max_retry_count)),
        live_buffer_size: clamp(u64::from(settings.live_buffer_size)),
        buffer_size: clamp(u64::from(settings.history_buffer_size)),
        read_batch_size: clamp(u64::from(settings.read_batch_size)),
        check_point_after_milliseconds: clamp(settings.checkpoint_after_ms),
        min_check_point_count: clamp(u64::from(settings.min_checkpoint_count)),
        max_check_point_count: clamp(u64::from(settings.max_checkpoint_count)),
        read_buffer_count: clamp(group.ready.len() as u64),
        live_buffer_count: 0,
        retry_buffer_count: clamp(group.retry.len() as u64),
        total_in_flight_messages: clamp(in_flight),
        outstanding_messages_count: clamp(in_flight),
        named_consumer_strategy: settings.strategy.name().to_owned(),
        max_subscriber_count: clamp(u64::from(settings.max_subscriber_count)),
        parked_message_count: i64::try_from(parked).unwrap_or(i64::MAX),
    }
}

/// The real server's status flags, as its `ToString` of them reads.
fn status(group: &Group) -> String {
    let position = if group.caught_up() { "Live" } else { "Behind" };
    if group.replaying() {
        format!("{position}, ReplayingParkedMessages")
    } else {
        position.to_owned()
    }
}

/// `start_from` as the real server reports it: `-1` (or `C:-1/P:-1`) for the end, `0` for the
/// beginning, else the revision or position.
fn start_text(source: &Source, start: Start) -> String {
    match (start, source) {
        (Start::End, Source::Stream(_)) => "-1".to_owned(),
        (Start::End, Source::All) => "C:-1/P:-1".to_owned(),
        (Start::Beginning, _) => position_text(source, 0),
        (Start::At(key), _) => position_text(source, key),
    }
}
