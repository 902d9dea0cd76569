//! Long scans of `$all` hand their worker thread back to the scheduler now and then.
//!
//! A read or subscription only waits when it sends and the client is behind. One whose filter
//! matches nothing sends nothing, so without a budget it would scan to the end of the log in a
//! single poll and starve every other call on its worker thread.

use crate::limits::EVENTS_BETWEEN_YIELDS;

/// Counts the events a scan considers and yields every [`EVENTS_BETWEEN_YIELDS`] of them.
pub struct ScanBudget {
    left: usize,
}

impl Default for ScanBudget {
    fn default() -> Self {
        ScanBudget {
            left: EVENTS_BETWEEN_YIELDS,
        }
    }
}

impl ScanBudget {
    /// Accounts for one considered event, letting other tasks run when the budget is spent.
    pub async fn spend_one(&mut self) {
        self.left -= 1;
        if self.left == 0 {
            self.left = EVENTS_BETWEEN_YIELDS;
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    //! On a single-threaded runtime a task spawned after a scan only runs if the scan yields,
    //! so what that task sees tells whether the scan held the thread to the end.

    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::config::Storage;
    use crate::grpc::access::Caller;
    use crate::grpc::convert::UuidFormat;
    use crate::grpc::filter::EventFilter;
    use crate::grpc::read::AllRead;
    use crate::grpc::read_request::StartAt;
    use crate::grpc::sink::Sink;
    use crate::grpc::subscription::AllSubscription;
    use crate::proto::streams::ReadResp;
    use crate::proto::streams::read_req::options::FilterOptions;
    use crate::proto::streams::read_req::options::filter_options::{Expression, Filter, Window};
    use crate::proto::streams::read_resp::Content;
    use crate::store::{ExpectedRevision, ProposedEvent, Store};

    /// A log of `$users` plus many events of one stream that no test filter wants.
    fn log_of_noise() -> Store {
        let store = Store::open(&Storage::Memory, 0).expect("memory store");
        let noise = (0..10 * EVENTS_BETWEEN_YIELDS)
            .map(|_| ProposedEvent {
                id: uuid::Uuid::new_v4(),
                event_type: "Noise".to_owned(),
                is_json: false,
                custom_metadata: Default::default(),
                data: Default::default(),
            })
            .collect();
        store
            .append("noise", ExpectedRevision::Any, noise)
            .expect("noise appended");
        store
    }

    /// Passes only streams starting with `wanted-`, with a checkpoint every 32 events.
    fn matching_nothing() -> EventFilter {
        EventFilter::from_options(&FilterOptions {
            filter: Some(Filter::StreamIdentifier(Expression {
                regex: String::new(),
                prefix: vec!["wanted-".to_owned()],
            })),
            window: Some(Window::Max(32)),
            checkpoint_interval_multiplier: 1,
        })
        .expect("valid filter")
    }

    /// A sink, the responses it sends, and the server's shutdown signal, which must be kept
    /// (dropping it counts as shutting down).
    fn sink() -> (
        Sink<ReadResp>,
        mpsc::Receiver<Result<ReadResp, tonic::Status>>,
        watch::Sender<bool>,
    ) {
        let (shutdown, stopping) = watch::channel(false);
        let (sink, responses) = Sink::new(stopping);
        (sink, responses.into_inner(), shutdown)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_filtered_read_that_matches_nothing_lets_other_tasks_run() {
        let store = log_of_noise();
        let (sink, mut responses, _shutdown) = sink();
        let read = AllRead {
            start: StartAt::Beginning,
            backwards: false,
            count: u64::MAX,
            filter: Some(matching_nothing()),
            uuid_format: UuidFormat::String,
        };
        let scan = tokio::spawn(read.run(store, sink));
        let other = tokio::spawn(async move {
            // The read drops its sink when it ends, which disconnects the channel.
            let seen = responses.try_recv();
            (seen, responses)
        });
        let (seen, mut responses) = other.await.expect("other task");
        assert!(
            matches!(seen, Err(mpsc::error::TryRecvError::Empty)),
            "the read did not yield before it finished: {seen:?}"
        );
        scan.await.expect("read task").expect("read ends normally");
        assert!(responses.recv().await.is_none(), "nothing matches");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_filtered_subscription_that_matches_nothing_lets_other_tasks_run() {
        let store = log_of_noise();
        let (sink, mut responses, _shutdown) = sink();
        let subscription = AllSubscription {
            start: StartAt::Beginning,
            filter: Some(matching_nothing()),
            uuid_format: UuidFormat::String,
            caller: Caller::Unchecked,
        };
        let scan = tokio::spawn(subscription.run(store, sink));
        let other = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Ok(response) = responses.try_recv() {
                seen.push(response.expect("no error").content);
            }
            (seen, responses)
        });
        let (seen, mut responses) = other.await.expect("other task");
        assert!(
            !seen
                .iter()
                .any(|content| matches!(content, Some(Content::CaughtUp(_)))),
            "the subscription caught up before it yielded: {seen:?}"
        );
        let mut checkpoints = seen
            .iter()
            .filter(|content| matches!(content, Some(Content::Checkpoint(_))))
            .count();
        loop {
            match responses.recv().await.expect("subscription still running") {
                Ok(ReadResp {
                    content: Some(Content::Checkpoint(_)),
                }) => checkpoints += 1,
                Ok(ReadResp {
                    content: Some(Content::CaughtUp(_)),
                }) => break,
                Ok(ReadResp {
                    content: Some(Content::Event(event)),
                }) => panic!("nothing matches, yet got {event:?}"),
                other => assert!(other.is_ok(), "{other:?}"),
            }
        }
        // One every 32 considered events and one at the end of catch-up.
        assert_eq!(checkpoints, (10 * EVENTS_BETWEEN_YIELDS + 1) / 32 + 1);
        scan.abort();
    }
}
