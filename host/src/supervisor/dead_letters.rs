//! Dead letters through the supervisor: retries asked from the command line (through the
//! control folder) go to the serving run of the projection, which does them between two
//! batches; new code (a start, a swap) retries the dead letters it has not refused yet on its
//! own; and with no process running, the command retries on the database itself.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use super::Supervisor;
use super::control::{self, Reply, Request, RetryRequest};
use crate::pipeline::{Control, Run};
use crate::projection::{Failures, Projection, RetryReport};
use crate::runtime::{Limits, Plugin, Runtime};
use crate::store::{DataDir, Selection};

/// Longest the process works on a retry asked through the control folder before it answers
/// that the retry did not finish (it still does, between batches).
const RETRY_ANSWER_WITHIN: Duration = Duration::from_secs(300);

impl Supervisor {
    /// Hands a retry asked through the control folder to the projection's serving run, and
    /// answers `request_path` from a task once the run has done it.
    pub(super) fn retry_requested(&mut self, request: RetryRequest, request_path: PathBuf) {
        let name = request.projection.clone();
        let serving = self
            .projections
            .get(&name)
            .and_then(|managed| managed.serving.as_ref());
        let Some(serving) = serving else {
            let why = if self.projections.contains_key(&name) {
                "does not run in this process now (it stopped: its log and `GET /api/projections` \
                 say why); deploy a fixed plugin, whose start retries its dead letters, or stop \
                 the process and retry on the data directory"
            } else {
                "is not a projection of the process running this data directory"
            };
            control::answer(
                &request_path,
                &Reply::from_result(Err(anyhow::format_err!("{name} {why}"))),
            );
            return;
        };
        let (reply, replied) = tokio::sync::oneshot::channel();
        serving.run.send(Control::RetryDeadLetters {
            selection: request.selection,
            reply: Some(reply),
        });
        tokio::spawn(async move {
            let reply = match tokio::time::timeout(RETRY_ANSWER_WITHIN, replied).await {
                Ok(Ok(Ok(report))) => Reply {
                    ok: true,
                    message: format!("{name}: {report}"),
                    retry: Some(report),
                },
                Ok(Ok(Err(error))) => Reply::from_result(Err(anyhow::format_err!(
                    "retrying dead letters of {name} failed; they are as they were: {error}"
                ))),
                Ok(Err(_)) => Reply::from_result(Err(anyhow::format_err!(
                    "the run of {name} ended before it retried its dead letters"
                ))),
                Err(_) => Reply::from_result(Err(anyhow::format_err!(
                    "{name} did not finish the retry within {} s; it goes on between batches",
                    RETRY_ANSWER_WITHIN.as_secs()
                ))),
            };
            control::answer(&request_path, &reply);
        });
    }

    /// Asks `run`, which now serves `plugin`, to retry the dead letters no build of this code
    /// has refused yet, when the setting allows: new code may project what the old refused,
    /// and a restart of the same code retries nothing.
    pub(super) fn retry_on_new_code(&self, run: &Run, plugin: &Plugin) {
        if self.options.retry_dead_letters {
            run.send(Control::RetryDeadLetters {
                selection: Selection::NotTriedBy(plugin.sha256.clone()),
                reply: None,
            });
        }
    }
}

/// Retries dead letters of `request.projection`: through the process running the data
/// directory when there is one (waiting up to `wait` for its answer), else on the current
/// version's database directly, with its kept module under `limits` and `failures` (the
/// config's, as a running projector would use).
pub fn retry_dead_letters(
    data: &DataDir,
    request: RetryRequest,
    wait: Duration,
    limits: Limits,
    failures: Failures,
) -> anyhow::Result<(String, RetryReport)> {
    // The lock keeps a `projector run` from starting on the database meanwhile.
    if let Some(_lock) = data.try_lock()? {
        return retry_offline(data, &request, limits, failures);
    }
    let reply = control::ask(data, Request::RetryDeadLetters(request), wait)?;
    match reply {
        Reply {
            ok: true,
            message,
            retry: Some(report),
        } => Ok((message, report)),
        Reply { message, .. } => bail!("{message}"),
    }
}

fn retry_offline(
    data: &DataDir,
    request: &RetryRequest,
    limits: Limits,
    failures: Failures,
) -> anyhow::Result<(String, RetryReport)> {
    let name = &request.projection;
    let Some(current) = data.catalog()?.current_of(name)? else {
        bail!(
            "projection {name} is not in the catalog of {}",
            data.root().display()
        );
    };
    let files = data.files_of(&current.file);
    if !files.wasm.is_file() {
        bail!(
            "the module of {name} {} was not kept ({}); start `projector run` with its plugin \
             to retry its dead letters",
            current.version,
            files.wasm.display()
        );
    }
    let runtime = Runtime::new(limits, Some(&data.compile_cache()))?;
    let plugin = runtime.load(&files.wasm)?;
    let mut projection = Projection::open(&runtime, plugin, &files.db, failures)?;
    let report = projection.retry_dead_letters(&request.selection)?;
    Ok((
        format!("{name}: {report} (no projector was running: done on the data directory)"),
        report,
    ))
}
