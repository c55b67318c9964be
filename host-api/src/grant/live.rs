//! Whether a task's grant still holds.
//!
//! A grant ends when it expires or when it, or any grant it was derived
//! from, is revoked. The runtime checks [`Liveness`] on every host call
//! (wasmtime's call hook, before the call runs) and on every epoch tick (so
//! a task that makes no calls is stopped too): the first call after the end
//! is refused with a deny record, and the task is interrupted.
//!
//! [`Revocations`] is the list of revoked grant ids of one process, and of
//! every process sharing its file: revoking an id ends every running task
//! whose grant chain holds it (its descendants included) and refuses new
//! ones.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use warden_host_api::grant::live::{Liveness, Revocations};
//!
//! let revocations = Revocations::new(None);
//! let child = Liveness::new(
//!     vec!["root".into(), "child".into()],
//!     Some(SystemTime::now() + Duration::from_secs(60)),
//! );
//! revocations.register(&child).unwrap();
//! assert!(child.check().is_ok());
//!
//! revocations.revoke("root").unwrap();
//! let ended = child.check().unwrap_err();
//! assert_eq!(ended.to_string(), "grant child was revoked (root was revoked)");
//! ```

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

/// Why a grant no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ended {
    /// Its expiry has passed.
    #[error("grant {id} expired {ago} ago")]
    Expired {
        /// The grant.
        id: String,
        /// How long ago, as text (`1.2s`).
        ago: String,
    },
    /// Whether it was revoked cannot be told: the revocation list could not
    /// be read. Refused rather than guessed.
    #[error("grant {id} cannot be checked: {why}")]
    Unknown {
        /// The grant.
        id: String,
        /// What failed.
        why: String,
    },
    /// It, or a grant it was derived from, was revoked.
    #[error("grant {id} was revoked ({by} was revoked)")]
    Revoked {
        /// The grant.
        id: String,
        /// The revoked id in its chain.
        by: String,
    },
}

/// The live state of one task's grant: shared by the task's store, the
/// runtime's [`Revocations`] and anyone who may end it.
#[derive(Debug)]
pub struct Liveness {
    chain: Vec<String>,
    expires: Option<SystemTime>,
    /// `expires` on the monotonic clock, for the per-call check.
    deadline: Option<Instant>,
    revoked: AtomicBool,
    by: Mutex<Option<String>>,
}

impl Liveness {
    /// The liveness of the last grant of `chain` (ids from the root grant
    /// to this one), which expires at `expires` if ever.
    pub fn new(chain: Vec<String>, expires: Option<SystemTime>) -> Arc<Liveness> {
        assert!(!chain.is_empty(), "a grant chain names at least the grant");
        let deadline = expires.map(|at| {
            let left = at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            Instant::now() + left
        });
        Arc::new(Liveness {
            chain,
            expires,
            deadline,
            revoked: AtomicBool::new(false),
            by: Mutex::new(None),
        })
    }

    /// The grant's id.
    pub fn id(&self) -> &str {
        self.chain.last().map_or("", String::as_str)
    }

    /// Ids from the root grant to this one.
    pub fn chain(&self) -> &[String] {
        &self.chain
    }

    /// When the grant expires, if ever.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    /// `Ok` while the grant holds. Cheap: one atomic load and, with an
    /// expiry, one clock read; it runs on every host call.
    pub fn check(&self) -> Result<(), Ended> {
        if self.revoked.load(Ordering::Acquire) {
            let by = self
                .by
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_default();
            return Err(Ended::Revoked {
                id: self.id().to_owned(),
                by,
            });
        }
        if let Some(deadline) = self.deadline {
            let now = Instant::now();
            if now >= deadline {
                return Err(Ended::Expired {
                    id: self.id().to_owned(),
                    ago: format!("{:.1?}", now - deadline),
                });
            }
        }
        Ok(())
    }

    /// Ends the grant because `by` (this grant or one of its ancestors) was
    /// revoked.
    pub fn revoke(&self, by: &str) {
        let mut slot = self.by.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(by.to_owned());
        }
        self.revoked.store(true, Ordering::Release);
    }
}

/// Revoked grant ids: of this process, and of every process that shares
/// the revocation file.
///
/// The file holds one id per line and is only ever appended to. Revoking in
/// one process ends that process's running tasks at once; other processes
/// see it when they [`refresh`](Revocations::refresh), which the runtime
/// does at every task start and a long-running server does periodically.
#[derive(Debug, Default)]
pub struct Revocations {
    file: Option<PathBuf>,
    inner: Mutex<Inner>,
    /// The view became fresh.
    freshened: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct Inner {
    revoked: HashSet<String>,
    live: Vec<Weak<Liveness>>,
    /// Bytes of the file already read.
    read: u64,
    view: Option<View>,
}

/// Revocations kept elsewhere (the fleet's, on a NATS server), and how recently this
/// process is known to have seen all of them.
#[derive(Debug)]
struct View {
    source: String,
    max_age: Duration,
    /// The last instant at which every revocation the source held had reached this list.
    fresh_at: Option<Instant>,
    /// Why the view is not being refreshed, until it is again.
    trouble: Option<String>,
    since: Instant,
}

/// A revocation list that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("revocation list {path}: {error}")]
pub struct RevocationError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub error: std::io::Error,
}

impl Revocations {
    /// A revocation list kept in memory and, if `file` is given, in that
    /// file too.
    pub fn new(file: Option<PathBuf>) -> Revocations {
        Revocations {
            file,
            inner: Mutex::new(Inner::default()),
            freshened: std::sync::Condvar::new(),
        }
    }

    /// Declares that revocations also come from `source` (e.g. the fleet's bucket on a
    /// NATS server, fed by a watcher through [`Revocations::revoked_elsewhere`]), and that
    /// a task under a grant may start only while this process is known to have seen all
    /// of them within `max_age` ([`Revocations::view_fresh`]). Until then, and whenever
    /// the view grows older, such tasks are refused: a revocation this process has not
    /// heard of is no reason to run.
    pub fn require_view(&self, source: impl Into<String>, max_age: Duration) {
        self.lock().view = Some(View {
            source: source.into(),
            max_age,
            fresh_at: None,
            trouble: None,
            since: Instant::now(),
        });
    }

    /// Every revocation the source held at `at` has reached this list.
    pub fn view_fresh(&self, at: Instant) {
        let mut inner = self.lock();
        if let Some(v) = &mut inner.view {
            v.fresh_at = Some(v.fresh_at.map_or(at, |f| f.max(at)));
            v.trouble = None;
        }
        self.freshened.notify_all();
    }

    /// Why the view cannot be refreshed now; said when a task is refused for it.
    pub fn view_trouble(&self, why: impl Into<String>) {
        if let Some(v) = &mut self.lock().view {
            v.trouble = Some(why.into());
        }
    }

    /// `id` was revoked elsewhere: every registered grant whose chain holds it ends now,
    /// and none may start again. Not written to this list's file, whose readers watch
    /// the same source.
    pub fn revoked_elsewhere(&self, id: &str) {
        let mut inner = self.lock();
        if inner.revoked.insert(id.to_owned()) {
            end_revoked(&mut inner);
        }
    }

    /// Waits up to `timeout` for a required view to be fresh; whether it is.
    pub fn wait_view(&self, timeout: Duration) -> bool {
        let inner = self.lock();
        let (inner, _) = self
            .freshened
            .wait_timeout_while(inner, timeout, |i| stale(i).is_some())
            .unwrap_or_else(|e| e.into_inner());
        stale(&inner).is_none()
    }

    /// The shared file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Revokes `id`: every registered grant whose chain holds it ends now,
    /// and none whose chain holds it may start again. Written to the file
    /// first, so that a revocation that cannot be recorded is not half done.
    pub fn revoke(&self, id: &str) -> Result<(), RevocationError> {
        if let Some(path) = &self.file {
            append_line(path, id).map_err(|error| RevocationError {
                path: path.clone(),
                error,
            })?;
        }
        let mut inner = self.lock();
        inner.revoked.insert(id.to_owned());
        end_revoked(&mut inner);
        Ok(())
    }

    /// Whether `id` is revoked (as far as this process has read).
    pub fn is_revoked(&self, id: &str) -> bool {
        self.lock().revoked.contains(id)
    }

    /// Reads ids other processes appended to the file since the last call,
    /// and ends the running grants they revoke.
    pub fn refresh(&self) -> Result<(), RevocationError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let mut inner = self.lock();
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                return Err(RevocationError {
                    path: path.clone(),
                    error,
                });
            }
        };
        let start = usize::try_from(inner.read)
            .unwrap_or(usize::MAX)
            .min(text.len());
        // Only whole lines: a line being appended is read next time.
        let end = text[start..]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(start, |i| start + i + 1);
        for line in String::from_utf8_lossy(&text[start..end]).lines() {
            let id = line.trim();
            if !id.is_empty() {
                inner.revoked.insert(id.to_owned());
            }
        }
        inner.read = end as u64;
        end_revoked(&mut inner);
        Ok(())
    }

    /// Registers a task's grant so that a later revocation ends it; refuses
    /// a grant that has already ended.
    pub fn register(&self, live: &Arc<Liveness>) -> Result<(), Ended> {
        let mut inner = self.lock();
        if let Some(by) = live.chain.iter().find(|id| inner.revoked.contains(*id)) {
            live.revoke(by);
        }
        live.check()?;
        if let Some(why) = stale(&inner) {
            return Err(Ended::Unknown {
                id: live.id().to_owned(),
                why,
            });
        }
        inner.live.retain(|w| w.strong_count() > 0);
        inner.live.push(Arc::downgrade(live));
        Ok(())
    }
}

/// Why a required view is too old to start a task under a grant, if it is.
fn stale(inner: &Inner) -> Option<String> {
    let v = inner.view.as_ref()?;
    let age = match v.fresh_at {
        Some(at) if at.elapsed() <= v.max_age => return None,
        Some(at) => format!(
            "were last seen whole {:.1}s ago",
            at.elapsed().as_secs_f64()
        ),
        None => format!(
            "have not been seen whole since this process started {:.1}s ago",
            v.since.elapsed().as_secs_f64()
        ),
    };
    Some(format!(
        "the revocations of {} {age}, more than the {:.1}s allowed (--revocation-max-age){}; \
         tasks under a grant start again once they are seen",
        v.source,
        v.max_age.as_secs_f64(),
        v.trouble
            .as_deref()
            .map_or_else(String::new, |t| format!(": {t}"))
    ))
}

fn end_revoked(inner: &mut Inner) {
    inner.live.retain(|w| w.strong_count() > 0);
    for live in inner.live.iter().filter_map(Weak::upgrade) {
        if let Some(by) = live.chain.iter().find(|id| inner.revoked.contains(*id)) {
            live.revoke(by);
        }
    }
}

fn append_line(path: &Path, id: &str) -> std::io::Result<()> {
    if id.is_empty() || id.contains(['\n', '\r']) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{id:?} is not a grant id"),
        ));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    // One write of a whole line: appends of concurrent revokers do not mix.
    f.write_all(format!("{id}\n").as_bytes())?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn revoking_an_ancestor_ends_every_descendant_and_nothing_else() {
        let r = Revocations::new(None);
        let child = Liveness::new(chain(&["root", "child"]), None);
        let grandchild = Liveness::new(chain(&["root", "child", "grand"]), None);
        let sibling = Liveness::new(chain(&["root", "other"]), None);
        for l in [&child, &grandchild, &sibling] {
            r.register(l).unwrap();
        }
        r.revoke("child").unwrap();
        assert_eq!(
            grandchild.check().unwrap_err().to_string(),
            "grant grand was revoked (child was revoked)"
        );
        assert!(child.check().is_err());
        assert!(sibling.check().is_ok());
        // A new task under a revoked chain never starts.
        let late = Liveness::new(chain(&["root", "child", "late"]), None);
        assert!(r.register(&late).is_err());
    }

    #[test]
    fn an_expired_grant_says_so() {
        let l = Liveness::new(
            chain(&["g"]),
            Some(SystemTime::now() - Duration::from_secs(1)),
        );
        let e = l.check().unwrap_err();
        assert!(matches!(e, Ended::Expired { .. }), "{e}");
        assert!(e.to_string().starts_with("grant g expired "), "{e}");
        assert!(Revocations::new(None).register(&l).is_err());
    }

    #[test]
    fn another_process_revocation_arrives_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/revoked");
        let here = Revocations::new(Some(path.clone()));
        let there = Revocations::new(Some(path.clone()));
        let task = Liveness::new(chain(&["a", "b"]), None);
        here.register(&task).unwrap();
        there.revoke("a").unwrap();
        assert!(task.check().is_ok(), "not read yet");
        // A half-written line is not taken.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"partial")
            .unwrap();
        here.refresh().unwrap();
        assert!(task.check().is_err());
        assert!(!here.is_revoked("partial"));
        assert!(here.is_revoked("a"));
    }

    #[test]
    fn ids_that_would_break_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = Revocations::new(Some(dir.path().join("revoked")));
        assert!(r.revoke("a\nb").is_err());
        assert!(r.revoke("").is_err());
    }

    #[test]
    fn a_stale_view_refuses_new_grants_until_it_is_fresh_again() {
        let r = Revocations::new(None);
        r.require_view("nats://fleet", Duration::from_millis(200));
        let task = || Liveness::new(chain(&["root", "t"]), None);
        let err = r.register(&task()).unwrap_err().to_string();
        assert!(err.contains("have not been seen whole"), "{err}");
        assert!(err.contains("nats://fleet"), "{err}");
        r.view_fresh(Instant::now());
        let running = task();
        r.register(&running).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        r.view_trouble("connection refused");
        let err = r.register(&task()).unwrap_err().to_string();
        assert!(
            err.contains("were last seen whole") && err.contains("connection refused"),
            "{err}"
        );
        // A running task is not stopped by staleness, only by a revocation.
        assert!(running.check().is_ok());
        assert!(!r.wait_view(Duration::from_millis(10)));
        r.view_fresh(Instant::now());
        assert!(r.wait_view(Duration::ZERO));
        r.register(&task()).unwrap();
        r.revoked_elsewhere("root");
        assert!(running.check().is_err());
        assert!(r.register(&task()).is_err());
    }
}
