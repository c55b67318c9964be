//! Revocation everywhere: the fleet's revoked grant ids in a JetStream key-value bucket.
//!
//! `warden grant revoke ID --nats URL` puts `ID` in the bucket [`REVOCATIONS_BUCKET`]
//! ([`revoke`]). Every runtime given `--nats` runs a [`RevocationWatcher`], which feeds
//! each id in the bucket, and each one put later, to the runtime's
//! [`Revocations`](warden_host_api::grant::live::Revocations): a running task under the
//! revoked grant or any grant derived from it is interrupted, and none starts again.
//!
//! A runtime that cannot hear of revocations must not go on as if there were none. The
//! watcher asks the server, every quarter of the allowed age (and at least every
//! second), how far the bucket goes, and marks the view fresh once it has delivered
//! that far. A view older than `--revocation-max-age` refuses new tasks under a grant,
//! naming why, until it is fresh again.

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_host_api::grant::live::Revocations;

/// The key-value bucket of revoked grant ids.
pub const REVOCATIONS_BUCKET: &str = "warden-revocations";

/// The default `--revocation-max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10);

/// Whether `id` can be a key of the bucket (letters, digits, `-`, `_`, `=`, `.`; the ids
/// Warden issues are hex).
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.contains("..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} cannot be revoked across the fleet: a key of the {REVOCATIONS_BUCKET} \
             bucket is letters, digits, '-', '_', '=' and '.' (the ids Warden issues are hex)"
        ))
    }
}

async fn bucket(js: &jetstream::Context) -> Result<kv::Store, String> {
    match js.get_key_value(REVOCATIONS_BUCKET).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: REVOCATIONS_BUCKET.into(),
                description: "grant ids revoked across the Warden fleet".into(),
                history: 1,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string()),
    }
}

/// Puts `id` in the fleet's revocations, with who revoked it and when. Returns the
/// entry's revision. Blocks for up to `timeout`.
pub fn revoke(url: &str, id: &str, by: &str, timeout: Duration) -> Result<u64, String> {
    check_id(id)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let value = serde_json::json!({
        "revoked_at": crate::audit::rfc3339(std::time::SystemTime::now()),
        "by": by,
    })
    .to_string();
    rt.block_on(async {
        tokio::time::timeout(timeout, async {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(timeout)
                .name("warden grant revoke")
                .connect(super::servers(url))
                .await
                .map_err(|e| format!("connecting to {url}: {e}"))?;
            let js = jetstream::new(client);
            let store = match bucket(&js).await {
                Ok(s) => s,
                // Made by another revoker between the two calls.
                Err(_) => js
                    .get_key_value(REVOCATIONS_BUCKET)
                    .await
                    .map_err(|e| format!("the bucket {REVOCATIONS_BUCKET}: {e}"))?,
            };
            store
                .put(id, value.into_bytes().into())
                .await
                .map_err(|e| format!("putting {id} in {REVOCATIONS_BUCKET}: {e}"))
        })
        .await
        .unwrap_or_else(|_| Err(format!("{url} did not answer within {timeout:?}")))
    })
}

/// Feeds the fleet's revocations to a runtime's list, and keeps its view fresh, until it
/// is dropped.
pub struct RevocationWatcher {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RevocationWatcher {
    /// Starts watching the bucket on `url` for `revocations`, which from now on refuses
    /// tasks under a grant while its view is older than `max_age`.
    pub fn start(
        revocations: Arc<Revocations>,
        url: String,
        max_age: Duration,
    ) -> std::io::Result<RevocationWatcher> {
        revocations.require_view(format!("{REVOCATIONS_BUCKET} on {url}"), max_age);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("warden-revocations-fleet".into())
            .spawn(move || {
                rt.block_on(async {
                    tokio::select! {
                        _ = rx => {}
                        () = watch(revocations, url, max_age) => {}
                    }
                });
            })?;
        Ok(RevocationWatcher {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for RevocationWatcher {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn watch(revocations: Arc<Revocations>, url: String, max_age: Duration) {
    let tick = (max_age / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let client = match async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(tick.max(Duration::from_millis(500)))
        .name("warden revocations")
        .connect(super::servers(&url))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            revocations.view_trouble(format!("connecting to {url}: {e}"));
            return std::future::pending().await;
        }
    };
    let js = jetstream::context::ContextBuilder::new()
        .timeout(tick.max(Duration::from_millis(500)))
        .build(client);
    loop {
        if let Err(e) = follow(&revocations, &js, tick).await {
            revocations.view_trouble(e);
        }
        tokio::time::sleep(tick).await;
    }
}

/// Delivers the bucket's ids to the list and marks the view fresh as it goes, until the
/// watch or the server fails.
async fn follow(
    revocations: &Revocations,
    js: &jetstream::Context,
    tick: Duration,
) -> Result<(), String> {
    let store = bucket(js).await?;
    let mut stream = js
        .get_stream(format!("KV_{REVOCATIONS_BUCKET}"))
        .await
        .map_err(|e| e.to_string())?;
    let mut entries = store
        .watch_with_history(">")
        .await
        .map_err(|e| e.to_string())?;
    // The highest revision delivered, and the stream's last sequence as of an instant.
    let mut seen = 0u64;
    let mut wanted: Option<(u64, Instant)> = None;
    let mut ticks = tokio::time::interval(tick);
    loop {
        tokio::select! {
            entry = entries.next() => match entry {
                Some(Ok(entry)) => {
                    if entry.operation == kv::Operation::Put {
                        revocations.revoked_elsewhere(&entry.key);
                    }
                    seen = seen.max(entry.revision);
                }
                Some(Err(e)) => return Err(format!("watching {REVOCATIONS_BUCKET}: {e}")),
                None => return Err(format!("the watch of {REVOCATIONS_BUCKET} ended")),
            },
            _ = ticks.tick() => {
                let asked = Instant::now();
                let last = stream
                    .info()
                    .await
                    .map_err(|e| format!("asking how far {REVOCATIONS_BUCKET} goes: {e}"))?
                    .state
                    .last_sequence;
                wanted = Some((last, asked));
            }
        }
        if let Some((last, asked)) = wanted
            && seen >= last
        {
            revocations.view_fresh(asked);
            wanted = None;
        }
    }
}
