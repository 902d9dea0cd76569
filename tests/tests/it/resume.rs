//! Stopping and resuming: a projection stopped after any batch and started again ends with
//! tables byte-identical to an uninterrupted run, and re-delivered events are not applied twice.

use std::path::Path;
use std::sync::Arc;

use projector::event::{EventFilter, Position, RecordedEvent};
use projector::projection::ErrorPolicy;
use projector::source::{EventSource, MemorySource, Subscription, parse_jsonl};
use projector_tests::{guests, shop, tables};

use crate::util;

const BATCH: usize = 50;

fn shop_events(count: usize) -> Vec<RecordedEvent> {
    parse_jsonl(&shop::to_jsonl(&shop::generate(count, 11))).expect("generated events parse")
}

async fn run(wasm: &str, data: &Path, source: Arc<dyn EventSource>) -> anyhow::Result<()> {
    let runtime = util::runtime();
    let projection = util::open(&runtime, wasm, data, ErrorPolicy::DeadLetter)?;
    util::run_to_end(vec![projection], source, BATCH).await?;
    Ok(())
}

/// Stops after every batch boundary of the log in turn (the source ends there, as if the process
/// had stopped), restarts over the whole log, and compares with one uninterrupted run.
#[tokio::test(flavor = "multi_thread")]
async fn resuming_after_any_batch_gives_identical_tables() -> anyhow::Result<()> {
    let events = shop_events(600);
    for (wasm, name) in [
        (guests::ORDER_SUMMARY, "order_summary"),
        (guests::PAYMENTS, "payments"),
    ] {
        let dir = tempfile::tempdir()?;
        let whole = dir.path().join("whole");
        run(
            wasm,
            &whole,
            Arc::new(MemorySource::new("all", events.clone())),
        )
        .await?;
        let reference = tables::dump(&whole, name)?;
        assert!(
            reference.lines().count() > 50,
            "{name} should have projected rows"
        );
        for stop in (BATCH..events.len()).step_by(BATCH) {
            let data = dir.path().join(format!("stop-{stop}"));
            run(
                wasm,
                &data,
                Arc::new(MemorySource::new("prefix", events[..stop].to_vec())),
            )
            .await?;
            run(
                wasm,
                &data,
                Arc::new(MemorySource::new("all", events.clone())),
            )
            .await?;
            assert!(
                tables::dump(&data, name)? == reference,
                "{name} differs after stopping at event {stop}"
            );
            assert_eq!(
                tables::dead_letters(&data, name)?,
                tables::dead_letters(&whole, name)?
            );
        }
    }
    Ok(())
}

/// A source that ignores the position it is asked to resume from and replays the whole log.
struct Replaying(MemorySource);

impl EventSource for Replaying {
    fn describe(&self) -> String {
        "replaying".into()
    }
    fn subscribe(&self, _after: Option<Position>, filter: &EventFilter) -> Subscription {
        self.0.subscribe(None, filter)
    }
    fn head(&self) -> futures::future::BoxFuture<'_, anyhow::Result<Option<Position>>> {
        self.0.head()
    }
    fn is_finite(&self) -> bool {
        true
    }
}

/// Events at or before the stored checkpoint are skipped even when a source delivers them again.
/// The dead letters show it: a plugin may ignore a repeated event on its own (order-summary's
/// upserts do), but a repeated malformed event would be dead-lettered a second time.
#[tokio::test(flavor = "multi_thread")]
async fn redelivered_events_are_not_applied_twice() -> anyhow::Result<()> {
    let events = shop_events(400);
    let dir = tempfile::tempdir()?;
    for (wasm, name) in [
        (guests::ORDER_SUMMARY, "order_summary"),
        (guests::PAYMENTS, "payments"),
    ] {
        let once = dir.path().join(format!("{name}-once"));
        run(
            wasm,
            &once,
            Arc::new(MemorySource::new("all", events.clone())),
        )
        .await?;
        let twice = dir.path().join(format!("{name}-twice"));
        run(
            wasm,
            &twice,
            Arc::new(MemorySource::new("half", events[..200].to_vec())),
        )
        .await?;
        for _ in 0..2 {
            run(
                wasm,
                &twice,
                Arc::new(Replaying(MemorySource::new("all", events.clone()))),
            )
            .await?;
        }
        assert!(
            tables::dump(&twice, name)? == tables::dump(&once, name)?,
            "{name}"
        );
        let dead = tables::dead_letters(&once, name)?;
        assert!(
            !dead.is_empty(),
            "{name}: the workload should hold malformed events"
        );
        assert_eq!(tables::dead_letters(&twice, name)?, dead, "{name}");
    }
    Ok(())
}
