//! The web console in headless Chromium against `projector run` on devstore: the page loads,
//! lists tally with its lag, pauses and resumes it, runs a query and shows its rows with the
//! position they were read at, and opens the dead-letter list. Driven by
//! `tests/console/drive.mjs` (playwright-core with Debian's chromium, both installed by
//! `tests/console/setup.sh`); skipped with a message where they are not installed.

use std::path::{Path, PathBuf};

use projector_tests::guests;

use crate::deploy::{PATIENCE, Scene, Writer, deploy, finish_tally, read, wait_for_position};

/// The Chromium the driver uses.
fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// The folder of the driver and its node_modules.
fn driver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_lists_pauses_resumes_and_queries_in_chromium() -> anyhow::Result<()> {
    let driver = driver_dir();
    let missing: Vec<String> = [
        chromium(),
        driver.join("node_modules/playwright-core/package.json"),
    ]
    .into_iter()
    .filter(|path| !path.exists())
    .map(|path| path.display().to_string())
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: the console test needs {missing:?}; `bash tests/console/setup.sh` installs \
             them (Debian's chromium and playwright-core from npm)"
        );
        return Ok(());
    }
    let scene = Scene::new("").await?;
    let earlier = Writer::backlog(&scene.connection, 120).await?;
    let writer = Writer::start(&scene.connection, 20)?;
    deploy(&scene.plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let (run, api) = scene.run_api("info")?;
    let last = earlier.lock().unwrap().last().unwrap().0;
    wait_for_position(&scene.data, last, PATIENCE, &scene.log)?;

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");
    let output = {
        let (driver, api, screenshot) = (driver.clone(), api.clone(), screenshot.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("node")
                .arg(driver.join("drive.mjs"))
                .arg(format!("http://{api}"))
                .arg("tally")
                .arg(&screenshot)
                .arg("")
                .arg("SELECT * FROM tally.tally ORDER BY 1")
                .output()
        })
        .await??
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "the console driver failed: {}\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr),
        crate::deploy::tail(&scene.log)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))?;
    assert_eq!(seen["listed"], true, "{seen}");
    assert_eq!(seen["paused"], true, "{seen}");
    assert_eq!(seen["resumed"], true, "{seen}");
    assert!(seen["rows"].as_u64() >= Some(3), "{seen}");
    assert!(
        seen["positions"]["tally"].as_u64() >= Some(last as u64),
        "{seen}"
    );
    assert!(screenshot.is_file());
    // `PROJECTOR_SCREENSHOT=docs/console.png` refreshes the one in the docs.
    if let Some(keep) = std::env::var_os("PROJECTOR_SCREENSHOT") {
        std::fs::copy(&screenshot, keep)?;
    }
    // Paused and resumed from the page, it went on to the tables of an uninterrupted run.
    finish_tally(writer, &earlier, run, &scene, 1).await?;
    scene.stop().await
}
