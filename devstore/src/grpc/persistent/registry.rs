//! Every persistent subscription group of the server: created, updated and deleted here, each
//! change recorded in `$persistentSubscriptionConfig` before it takes effect, and all of them
//! started again from that stream when a durable devstore opens.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use tokio::sync::Mutex;
use tonic::Status;

use super::consumers::ConsumerId;
use super::errors;
use super::group::{Group, Handle, end_of};
use super::records::{self, Entry};
use super::settings::{Settings, Source, Start};
use crate::grpc::status;
use crate::limits::MAX_PERSISTENT_GROUPS;
use crate::store::{Direction, ExpectedRevision, ProposedEvent, Store};

/// The groups, shared by every call.
#[derive(Clone)]
pub struct Groups {
    shared: Arc<Shared>,
}

struct Shared {
    store: Store,
    /// Changes are serialised by this lock, held across the config write and the group's
    /// start or stop, so the config stream always lists exactly the running groups.
    running: Mutex<Running>,
    /// Numbers consumers' calls.
    next_consumer: AtomicU64,
}

#[derive(Default)]
struct Running {
    /// Set once the server stops them: nothing starts after that.
    stopped: bool,
    groups: BTreeMap<(Source, String), Registered>,
    /// Sources that ever had a group since start-up: listing one of these with no groups left
    /// answers an empty list, listing any other "not found", as on the real server.
    known: HashSet<Source>,
}

struct Registered {
    settings: Settings,
    handle: Handle,
}

impl Groups {
    /// Starts every group the log's config stream lists, each from its checkpoint.
    pub async fn load(store: Store) -> anyhow::Result<Groups> {
        let mut running = Running::default();
        let newest = store
            .stream_page(records::CONFIG_STREAM, u64::MAX, Direction::Backwards, 1)
            .await
            .with_context(|| format!("reading {}", records::CONFIG_STREAM))?
            .and_then(|page| page.events.into_iter().next());
        if let Some(config) = newest {
            let entries = records::parse_config(&config).with_context(|| {
                format!(
                    "reading the persistent subscriptions in {}",
                    records::CONFIG_STREAM
                )
            })?;
            for entry in entries {
                let handle = Group::start(
                    store.clone(),
                    entry.source.clone(),
                    entry.group.clone(),
                    entry.settings.clone(),
                )
                .await
                .map_err(|error| anyhow::anyhow!("{}", error.message()))
                .with_context(|| format!("starting persistent subscription {}", entry.group))?;
                running.known.insert(entry.source.clone());
                running.groups.insert(
                    (entry.source, entry.group),
                    Registered {
                        settings: entry.settings,
                        handle,
                    },
                );
            }
        }
        Ok(Groups {
            shared: Arc::new(Shared {
                store,
                running: Mutex::new(running),
                next_consumer: AtomicU64::new(1),
            }),
        })
    }

    /// The log the groups read.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// A new consumer id.
    pub fn next_consumer(&self) -> ConsumerId {
        self.shared.next_consumer.fetch_add(1, Ordering::Relaxed)
    }

    /// Creates and starts a group.
    pub async fn create(
        &self,
        source: Source,
        group: String,
        mut settings: Settings,
    ) -> Result<(), Status> {
        let mut running = self.running().await?;
        let key = (source, group);
        if running.groups.contains_key(&key) {
            return Err(errors::exists(&key.0, &key.1));
        }
        if running.groups.len() >= MAX_PERSISTENT_GROUPS {
            return Err(Status::resource_exhausted(format!(
                "devstore holds at most {MAX_PERSISTENT_GROUPS} persistent subscription groups; \
                 delete some first"
            )));
        }
        let (source, group) = key;
        if let (Source::All, Start::At(position)) = (&source, settings.start)
            && position > self.shared.store.head()
        {
            let reason = format!(
                "Invalid Start From position: C:{position}/P:{position}. The last position is \
                 C:{head}/P:{head}",
                head = self.shared.store.head()
            );
            return Err(errors::failed(&source, &group, &reason));
        }
        if settings.start == Start::End {
            settings.resolved_end = Some(end_of(&self.shared.store, &source));
        }
        let mut entries = entries(&running);
        entries.push(Entry {
            source: source.clone(),
            group: group.clone(),
            settings: settings.clone(),
        });
        self.save(entries).await?;
        let handle = self.start(&source, &group, &settings).await?;
        running.known.insert(source.clone());
        running
            .groups
            .insert((source, group), Registered { settings, handle });
        Ok(())
    }

    /// Replaces a group's settings: its consumers are dropped and it starts again from its
    /// checkpoint.
    pub async fn update(
        &self,
        source: Source,
        group: String,
        mut settings: Settings,
    ) -> Result<(), Status> {
        let mut running = self.running().await?;
        let key = (source, group);
        let Some(registered) = running.groups.get(&key) else {
            return Err(errors::not_found(&key.0, &key.1));
        };
        if settings.start == Start::End {
            // Still "the end" it was: the same place (the Rust client sends its start with
            // every update); a new start at the end: where the end is now.
            settings.resolved_end = match registered.settings.start {
                Start::End => registered.settings.resolved_end,
                _ => Some(end_of(&self.shared.store, &key.0)),
            };
        }
        let mut entries = entries(&running);
        for entry in &mut entries {
            if entry.source == key.0 && entry.group == key.1 {
                entry.settings = settings.clone();
            }
        }
        self.save(entries).await?;
        let handle = registered.handle.clone();
        self.restart_one(&mut running, key, handle, settings).await
    }

    /// The settings of a group, for an update to start from.
    pub async fn settings(&self, source: &Source, group: &str) -> Result<Settings, Status> {
        let running = self.shared.running.lock().await;
        running
            .groups
            .get(&(source.clone(), group.to_owned()))
            .map(|registered| registered.settings.clone())
            .ok_or_else(|| errors::not_found(source, group))
    }

    /// Deletes a group: its consumers are dropped, and its checkpoint and parked messages
    /// deleted (a group created again under the name starts afresh).
    pub async fn delete(&self, source: Source, group: String) -> Result<(), Status> {
        let mut running = self.running().await?;
        let key = (source, group);
        let Some(registered) = running.groups.remove(&key) else {
            return Err(errors::not_found(&key.0, &key.1));
        };
        let entries = entries(&running);
        if let Err(error) = self.save(entries).await {
            running.groups.insert(key, registered);
            return Err(error);
        }
        registered
            .handle
            .stop(errors::dropped(&key.0, &key.1), false)
            .await;
        let store = self.shared.store.clone();
        let streams = [
            records::checkpoint_stream(&key.0, &key.1),
            records::parked_stream(&key.0, &key.1),
        ];
        let _ = tokio::task::spawn_blocking(move || {
            for stream in streams {
                // A group that never checkpointed or parked has no stream to delete.
                let _ = store.delete(&stream, ExpectedRevision::Any);
            }
        })
        .await;
        Ok(())
    }

    /// A running group.
    pub async fn get(&self, source: &Source, group: &str) -> Result<Handle, Status> {
        let running = self.shared.running.lock().await;
        running
            .groups
            .get(&(source.clone(), group.to_owned()))
            .map(|registered| registered.handle.clone())
            .ok_or_else(|| errors::not_found(source, group))
    }

    /// The groups of `source` (all groups when None). A source that never had one is not found.
    pub async fn list(&self, source: Option<&Source>) -> Result<Vec<Handle>, Status> {
        let running = self.shared.running.lock().await;
        if let Some(source) = source
            && !running.known.contains(source)
        {
            return Err(errors::not_found(source, ""));
        }
        Ok(running
            .groups
            .iter()
            .filter(|((of, _), _)| source.is_none_or(|source| source == of))
            .map(|(_, registered)| registered.handle.clone())
            .collect())
    }

    /// Drops every consumer and starts every group again from its checkpoint.
    pub async fn restart(&self) -> Result<(), Status> {
        let mut running = self.running().await?;
        let keys: Vec<(Source, String)> = running.groups.keys().cloned().collect();
        for key in keys {
            let Some(registered) = running.groups.remove(&key) else {
                continue;
            };
            let Registered { settings, handle } = registered;
            self.restart_one(&mut running, key, handle, settings)
                .await?;
        }
        Ok(())
    }

    /// Stops a running group (dropping its consumers, keeping its checkpoint) and starts it
    /// again with `settings`.
    async fn restart_one(
        &self,
        running: &mut Running,
        key: (Source, String),
        running_handle: Handle,
        settings: Settings,
    ) -> Result<(), Status> {
        running_handle
            .stop(errors::dropped(&key.0, &key.1), true)
            .await;
        let handle = self.start(&key.0, &key.1, &settings).await?;
        running.groups.insert(key, Registered { settings, handle });
        Ok(())
    }

    /// Stops every group for a server shutting down: each writes its checkpoint and ends its
    /// consumers' calls with "shutting down", which also lets the gRPC server finish.
    pub async fn stop(&self) {
        let mut running = self.shared.running.lock().await;
        running.stopped = true;
        for registered in running.groups.values() {
            registered.handle.stop(status::shutting_down(), true).await;
        }
    }

    /// The running groups, to change them; refused once the server stopped them.
    async fn running(&self) -> Result<tokio::sync::MutexGuard<'_, Running>, Status> {
        let running = self.shared.running.lock().await;
        if running.stopped {
            return Err(status::shutting_down());
        }
        Ok(running)
    }

    async fn start(
        &self,
        source: &Source,
        group: &str,
        settings: &Settings,
    ) -> Result<Handle, Status> {
        Group::start(
            self.shared.store.clone(),
            source.clone(),
            group.to_owned(),
            settings.clone(),
        )
        .await
    }

    /// Writes the config record listing `entries` (with `$maxCount` 2 on the stream the first
    /// time, as the real server does).
    async fn save(&self, entries: Vec<Entry>) -> Result<(), Status> {
        let store = self.shared.store.clone();
        let written = tokio::task::spawn_blocking(move || {
            if store.last_revision(records::CONFIG_STREAM).is_none() {
                let metadata = ProposedEvent {
                    id: uuid::Uuid::new_v4(),
                    event_type: "$metadata".to_owned(),
                    is_json: true,
                    custom_metadata: Default::default(),
                    data: serde_json::json!({"$maxCount": 2}).to_string().into(),
                };
                let stream = format!("$${}", records::CONFIG_STREAM);
                store.append(&stream, ExpectedRevision::Any, vec![metadata])?;
            }
            store.append(
                records::CONFIG_STREAM,
                ExpectedRevision::Any,
                vec![records::config(entries)],
            )
        })
        .await
        .map_err(|_| Status::internal("the config write task failed"))?;
        match written {
            Ok(_) => Ok(()),
            Err(crate::store::WriteError::Storage(error)) => Err(status::storage_failure(&error)),
            Err(other) => Err(Status::internal(format!(
                "writing {}: {other:?}",
                records::CONFIG_STREAM
            ))),
        }
    }
}

/// The config entries of the running groups.
fn entries(running: &Running) -> Vec<Entry> {
    running
        .groups
        .iter()
        .map(|((source, group), registered)| Entry {
            source: source.clone(),
            group: group.clone(),
            settings: registered.settings.clone(),
        })
        .collect()
}
