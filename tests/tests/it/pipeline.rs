//! The example plugins over a generated shop workload give exactly the tables an independent
//! model computes.

use std::sync::Arc;

use projector::projection::ErrorPolicy;
use projector::source::JsonlSource;
use projector_tests::{guests, shop, tables};

use crate::util;

/// Thousands of orders and payments, with duplicates, invalid transitions and malformed events,
/// through both example plugins at once.
#[tokio::test(flavor = "multi_thread")]
async fn example_plugins_match_an_independent_model() -> anyhow::Result<()> {
    let events = shop::generate(4000, 7);
    let expected = shop::expected(&events);
    let dir = tempfile::tempdir()?;
    let events_file = dir.path().join("shop.jsonl");
    std::fs::write(&events_file, shop::to_jsonl(&events))?;
    let data = dir.path().join("data");
    let runtime = util::runtime();
    let projections = vec![
        util::open(
            &runtime,
            guests::ORDER_SUMMARY,
            &data,
            ErrorPolicy::DeadLetter,
        )?,
        util::open(&runtime, guests::PAYMENTS, &data, ErrorPolicy::DeadLetter)?,
    ];
    let outcomes =
        util::run_to_end(projections, Arc::new(JsonlSource::open(&events_file)?), 128).await?;
    assert!(outcomes.iter().all(|o| o.caught_up));
    assert!(
        expected.orders.len() > 500,
        "the workload should be substantial"
    );

    assert_eq!(
        tables::rows(&data, "order_summary", "orders")?,
        expected.orders
    );
    assert_eq!(
        tables::rows(&data, "order_summary", "customer_totals")?,
        expected.customer_totals
    );
    assert_eq!(
        tables::rows(&data, "payments", "payments")?,
        expected.payments
    );
    assert_eq!(
        tables::rows(&data, "payments", "customer_daily")?,
        expected.customer_daily
    );

    let order_dead: Vec<i64> = tables::dead_letters(&data, "order_summary")?
        .into_iter()
        .map(|d| d.0)
        .collect();
    let payment_dead: Vec<i64> = tables::dead_letters(&data, "payments")?
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(order_dead, expected.order_dead_letters);
    assert_eq!(payment_dead, expected.payment_dead_letters);
    assert!(
        !order_dead.is_empty() && !payment_dead.is_empty(),
        "the workload should exercise dead letters"
    );
    Ok(())
}

/// The fixture committed for the README and the plugin guide is the generator's output, so it
/// and the model cannot drift apart.
#[test]
fn committed_fixture_is_the_generator_output() -> anyhow::Result<()> {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/shop.jsonl"))?;
    let generated = shop::to_jsonl(&shop::generate(2000, 42));
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/shop.jsonl"),
            &generated,
        )?;
        return Ok(());
    }
    assert!(
        committed == generated,
        "tests/fixtures/shop.jsonl is stale; regenerate it with UPDATE_FIXTURES=1"
    );
    Ok(())
}
