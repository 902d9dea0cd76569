//! The Python `kurrentdbclient` package appends, reads and subscribes against devstore, and is
//! refused what stream ACLs refuse under `require_auth` (`scripts/python_client.py`). Skipped,
//! with a message, where the package is not installed; `DEVSTORE_PYTHON` chooses the
//! interpreter (default `python3`).

use std::process::Command;

use devstore::{Config, Server, Tls};

use crate::util::{config, guard, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_kurrentdbclient_appends_reads_and_subscribes() -> anyhow::Result<()> {
    let python = std::env::var("DEVSTORE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = Command::new(&python)
        .args(["-c", "import kurrentdbclient"])
        .output();
    if !matches!(&probe, Ok(output) if output.status.success()) {
        eprintln!(
            "SKIPPED python_kurrentdbclient: `{python} -c 'import kurrentdbclient'` failed; \
             install it with `pip install kurrentdbclient` to run this test"
        );
        return Ok(());
    }
    let (server, _client) = start().await?;
    // The Python client sends credentials only over TLS.
    let secured = Server::start(Config {
        tls: Tls::SelfSigned,
        require_auth: true,
        ..config()
    })
    .await?;
    // Cargo sets CARGO_MANIFEST_DIR for the test process too; prefer it over the compile-time
    // value, which is stale when a shared target dir reuses a binary built in another checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let script = format!("{manifest_dir}/scripts/python_client.py");
    let connection_string = server.connection_string();
    let secured_address = secured.local_addr().to_string();
    let output = guard(tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(script)
            .arg(connection_string)
            .arg(secured_address)
            .output()
    }))
    .await???;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("python client: ok"), "{stdout}");
    secured.shutdown().await?;
    server.shutdown().await
}
