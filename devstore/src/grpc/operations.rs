//! `Operations` and `Monitoring`, answered as a single node answers them.
//!
//! - A scavenge has nothing to do (events hidden by `$tb`, `$maxCount` or `$maxAge` are never
//!   shown, and devstore does not reclaim their space), so `StartScavenge` reports `Started`
//!   with a new id, and the scavenge is over at once: `StopScavenge` of any id is the real
//!   server's answer for a scavenge that is not running, `NotFound`.
//! - `MergeIndexes`, `ResignNode` (a single node is leader again at once) and
//!   `SetNodePriority` succeed doing nothing; `RestartPersistentSubscriptions` drops every
//!   persistent subscription consumer and starts each group again from its checkpoint.
//! - `Shutdown` stops the server, as it stops a real node.
//! - `Monitoring/Stats` streams a statistics map every `refresh_time_period_in_ms` (at least
//!   [`MIN_REFRESH`]) until the client goes or the server stops.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::Context;
use crate::proto::monitoring::monitoring_server::Monitoring;
use crate::proto::monitoring::{StatsReq, StatsResp};
use crate::proto::operations::operations_server::Operations;
use crate::proto::operations::scavenge_resp::ScavengeResult;
use crate::proto::operations::{
    ScavengeResp, SetNodePriorityReq, StartScavengeReq, StopScavengeReq,
};

/// Shortest pause between two statistics a client may ask for.
pub const MIN_REFRESH: Duration = Duration::from_millis(100);

/// The Operations service.
pub struct OperationsService {
    /// Raising it stops the server (`Shutdown`).
    pub stop: Arc<watch::Sender<bool>>,
    /// The persistent subscription groups (`RestartPersistentSubscriptions`).
    pub groups: super::Groups,
}

#[tonic::async_trait]
impl Operations for OperationsService {
    async fn start_scavenge(
        &self,
        _: Request<StartScavengeReq>,
    ) -> Result<Response<ScavengeResp>, Status> {
        Ok(Response::new(ScavengeResp {
            scavenge_id: uuid::Uuid::new_v4().to_string(),
            scavenge_result: ScavengeResult::Started as i32,
        }))
    }

    async fn stop_scavenge(
        &self,
        request: Request<StopScavengeReq>,
    ) -> Result<Response<ScavengeResp>, Status> {
        let id = request
            .into_inner()
            .options
            .map(|options| options.scavenge_id)
            .unwrap_or_default();
        // Every scavenge is over as soon as it starts: none is running to stop.
        Err(Status::not_found(format!(
            "Scavenge id was invalid ({id}): no scavenge is running"
        )))
    }

    async fn shutdown(&self, _: Request<()>) -> Result<Response<()>, Status> {
        tracing::info!("shutting down on request (Operations/Shutdown)");
        // After this answer is sent: the server stops taking calls, as a node does.
        let stop = Arc::clone(&self.stop);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = stop.send(true);
        });
        Ok(Response::new(()))
    }

    async fn merge_indexes(&self, _: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }

    async fn resign_node(&self, _: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }

    async fn set_node_priority(
        &self,
        _: Request<SetNodePriorityReq>,
    ) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }

    async fn restart_persistent_subscriptions(
        &self,
        _: Request<()>,
    ) -> Result<Response<()>, Status> {
        self.groups.restart().await?;
        Ok(Response::new(()))
    }
}

/// The Monitoring service.
pub struct MonitoringService {
    pub context: Context,
    /// When the server started.
    pub started: Instant,
}

type StatsStream = Pin<Box<dyn Stream<Item = Result<StatsResp, Status>> + Send>>;

#[tonic::async_trait]
impl Monitoring for MonitoringService {
    type StatsStream = StatsStream;

    async fn stats(&self, request: Request<StatsReq>) -> Result<Response<StatsStream>, Status> {
        let refresh =
            Duration::from_millis(request.into_inner().refresh_time_period_in_ms).max(MIN_REFRESH);
        let context = self.context.clone();
        let started = self.started;
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            let mut shutdown = context.shutdown.clone();
            loop {
                if sender.send(Ok(stats(&context, started))).await.is_err() {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(refresh) => {}
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                    () = sender.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

/// One statistics map, with keys named as the real server names them.
fn stats(context: &Context, started: Instant) -> StatsResp {
    let head = context.store.head();
    let mut stats = std::collections::HashMap::new();
    let mut put = |key: &str, value: String| {
        stats.insert(key.to_owned(), value);
    };
    put("proc-id", std::process::id().to_string());
    put(
        "proc-startTime",
        (std::time::SystemTime::now() - started.elapsed())
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string(),
    );
    put(
        "proc-threadsCount",
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .to_string(),
    );
    put("es-checksum", head.to_string());
    put("es-checksumNonFlushed", head.to_string());
    put("es-writer-lastFlushSize", "0".to_owned());
    put("sys-cpu", "0".to_owned());
    StatsResp { stats }
}
