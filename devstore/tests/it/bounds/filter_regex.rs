//! Filter regexes that cannot decide within their backtracking limit end the read or
//! subscription with `InvalidArgument` naming the regex, and oversized regexes are refused.

use devstore::limits::MAX_FILTER_REGEX_BYTES;
use devstore::proto::streams::read_req::Options;
use devstore::proto::streams::read_req::options::{
    self, AllOptions, CountOption, FilterOption, FilterOptions, ReadDirection, StreamOption,
    UuidOption, all_options::AllOption, filter_options,
};
use devstore::proto::streams::streams_client::StreamsClient;
use devstore::proto::streams::{ReadReq, read_resp};
use eventstore::{
    Error, StreamPosition, SubscribeToAllOptions, SubscriptionEvent, SubscriptionFilter,
};

use crate::util::{events, guard, start, stream};

/// Backtracks exponentially on `ab` repeated: every split of the subject into `a`, `b` and `ab`
/// is tried before the look-ahead fails.
const CATASTROPHIC: &str = "(a|b|ab)*(?=c)";

fn catastrophic_stream() -> String {
    "ab".repeat(28)
}

/// The error that ends a filtered subscription from the start of `$all`, or None if it caught
/// up.
async fn subscription_error(
    client: &eventstore::Client,
    filter: SubscriptionFilter,
) -> anyhow::Result<Option<Error>> {
    let options = SubscribeToAllOptions::default()
        .position(StreamPosition::Start)
        .filter(filter);
    let mut subscription = client.subscribe_to_all(&options).await;
    loop {
        match guard(subscription.next_subscription_event()).await? {
            Err(error) => return Ok(Some(error)),
            Ok(SubscriptionEvent::CaughtUp) => return Ok(None),
            Ok(_) => {}
        }
    }
}

fn assert_invalid_argument(error: Option<Error>, mentions: &str) {
    match error {
        Some(Error::Grpc { code, message }) => {
            assert_eq!(code, tonic::Code::InvalidArgument, "{message}");
            assert!(message.contains(mentions), "{message}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// A subscription whose regex exceeds its backtracking limit on a stream name fails; one with
/// a sane regex on the same log still catches up, and appends still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_regex_over_its_backtracking_limit_fails() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    client
        .append_to_stream(
            catastrophic_stream().as_str(),
            &Default::default(),
            events("E", 1),
        )
        .await?;
    let error = subscription_error(
        &client,
        SubscriptionFilter::on_stream_name().regex(CATASTROPHIC),
    )
    .await?;
    assert_invalid_argument(error, CATASTROPHIC);

    let sane =
        subscription_error(&client, SubscriptionFilter::on_stream_name().regex("^ab")).await?;
    assert!(sane.is_none(), "{sane:?}");
    client
        .append_to_stream(
            stream("after").as_str(),
            &Default::default(),
            events("E", 1),
        )
        .await?;
    server.shutdown().await
}

/// The same for a filtered count read, which the official Rust client cannot send (Python's
/// can), so it goes through devstore's generated stubs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_regex_over_its_backtracking_limit_fails() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    client
        .append_to_stream(
            catastrophic_stream().as_str(),
            &Default::default(),
            events("E", 1),
        )
        .await?;
    let mut raw = StreamsClient::connect(format!("http://{}", server.local_addr())).await?;

    let mut responses = raw.read(filtered_read(CATASTROPHIC)).await?.into_inner();
    let error = loop {
        match guard(responses.message()).await? {
            Err(status) => break status,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the read ended without an error"),
        }
    };
    assert_eq!(
        error.code(),
        tonic::Code::InvalidArgument,
        "{}",
        error.message()
    );
    assert!(
        error.message().contains(CATASTROPHIC),
        "{}",
        error.message()
    );

    let mut responses = raw.read(filtered_read("^ab")).await?.into_inner();
    let mut matched = 0;
    while let Some(response) = guard(responses.message()).await?? {
        if let Some(read_resp::Content::Event(_)) = response.content {
            matched += 1;
        }
    }
    assert_eq!(matched, 1);
    server.shutdown().await
}

/// A regex one byte over the length limit is refused before anything is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_length_is_bounded() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let too_long = "x".repeat(MAX_FILTER_REGEX_BYTES + 1);
    let error = subscription_error(
        &client,
        SubscriptionFilter::on_stream_name().regex(too_long),
    )
    .await?;
    assert_invalid_argument(error, &format!("limit of {MAX_FILTER_REGEX_BYTES} bytes"));

    let longest = "x".repeat(MAX_FILTER_REGEX_BYTES);
    let accepted =
        subscription_error(&client, SubscriptionFilter::on_stream_name().regex(longest)).await?;
    assert!(accepted.is_none(), "{accepted:?}");
    server.shutdown().await
}

/// A forwards count read of `$all` from the start, filtered by a stream-name regex.
fn filtered_read(regex: &str) -> ReadReq {
    let filter = FilterOptions {
        filter: Some(filter_options::Filter::StreamIdentifier(
            filter_options::Expression {
                regex: regex.to_owned(),
                prefix: Vec::new(),
            },
        )),
        window: Some(filter_options::Window::Count(())),
        checkpoint_interval_multiplier: 1,
    };
    ReadReq {
        options: Some(Options {
            stream_option: Some(StreamOption::All(AllOptions {
                all_option: Some(AllOption::Start(())),
            })),
            read_direction: ReadDirection::Forwards as i32,
            resolve_links: false,
            count_option: Some(CountOption::Count(100)),
            filter_option: Some(FilterOption::Filter(filter)),
            uuid_option: Some(UuidOption {
                content: Some(options::uuid_option::Content::String(())),
            }),
            control_option: None,
        }),
    }
}
