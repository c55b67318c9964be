//! Telling a user that a compile is taking a while.
//!
//! A component of a few hundred kilobytes compiles in well under a second; an interpreter
//! packaged as a component (componentize-py's 19 MB, componentize-js's 15 MB) takes seconds to
//! tens of seconds the first time, and a user looking at a silent terminal cannot tell that from
//! a hang. Wasmtime reports no progress of its own, so this reports time: a host gets a
//! [`CompileNotice`] once a compile has run for [`SLOW`], again every [`EVERY`], and once when
//! it ends. A compile that ends sooner says nothing, and neither does a cache hit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a compile runs before it is reported.
pub const SLOW: Duration = Duration::from_secs(1);

/// How often a compile still running is reported again.
pub const EVERY: Duration = Duration::from_secs(5);

/// News of a slow compile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileNotice {
    /// The component at `path` (`bytes` long) has been compiling for `elapsed`.
    Slow {
        /// The component file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// Time since the compile started.
        elapsed: Duration,
    },
    /// A compile reported as slow has ended (well or not) after `elapsed`.
    Done {
        /// The component file.
        path: PathBuf,
        /// How long it took.
        elapsed: Duration,
    },
}

/// Where notices go: a host's function, called from a thread of Warden's.
pub type Notify = Arc<dyn Fn(&CompileNotice) + Send + Sync>;

/// Watches one compile from a thread of its own until dropped.
pub struct Watch {
    done: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// Starts watching the compile of `path`, `bytes` long.
    pub fn start(notify: Notify, path: &Path, bytes: u64) -> Watch {
        let (done, ended) = mpsc::channel::<()>();
        let path = path.to_path_buf();
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("warden-compile-watch".into())
            .spawn(move || {
                let mut wait = SLOW;
                let mut slow = false;
                while let Err(RecvTimeoutError::Timeout) = ended.recv_timeout(wait) {
                    slow = true;
                    wait = EVERY;
                    notify(&CompileNotice::Slow {
                        path: path.clone(),
                        bytes,
                        elapsed: started.elapsed(),
                    });
                }
                if slow {
                    notify(&CompileNotice::Done {
                        path,
                        elapsed: started.elapsed(),
                    });
                }
            })
            // Without a thread there is no notice, and the compile goes on regardless.
            .ok();
        Watch {
            done: Some(done),
            thread,
        }
    }
}

impl Drop for Watch {
    /// Ends the watch; its last notice has been given when this returns.
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn watch_for(compile: Duration) -> Vec<CompileNotice> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let watch = Watch::start(
            Arc::new(move |n: &CompileNotice| sink.lock().unwrap().push(n.clone())),
            Path::new("big.wasm"),
            7,
        );
        std::thread::sleep(compile);
        drop(watch);
        // The watch's thread, and with it the sink's clone, is gone once `drop` returns.
        Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
    }

    #[test]
    fn a_quick_compile_says_nothing() {
        assert_eq!(watch_for(Duration::ZERO), []);
    }

    #[test]
    fn a_slow_compile_is_reported_and_its_end_too() {
        let seen = watch_for(SLOW + Duration::from_millis(300));
        let [
            CompileNotice::Slow {
                path,
                bytes,
                elapsed,
            },
            CompileNotice::Done { elapsed: end, .. },
        ] = &seen[..]
        else {
            panic!("{seen:?}");
        };
        assert_eq!((path.as_path(), *bytes), (Path::new("big.wasm"), 7));
        assert!(*elapsed >= SLOW && end >= elapsed, "{seen:?}");
    }
}
