//! Limits: memory, wall-clock time, fuel and output size.
//!
//! Memory is enforced by [`Limiter`] (wasmtime's `ResourceLimiter`), output
//! by [`CappedPipe`], time by epoch interruption and fuel by wasmtime's fuel
//! counter, both set up by the runtime from [`manifest::Limits`]. Whatever
//! limit ends a task is remembered in a [`LimitHit`], so the task's error
//! names it instead of showing a bare trap.
//!
//! ```toml
//! [limits]
//! memory = "64 MiB"
//! timeout = "5s"
//! fuel = 5_000_000_000   # optional
//! output = "1 MiB"
//! ```

mod grant;
pub mod manifest;

pub use grant::{LimitsNarrowing, LimitsWire, TaskLimits};

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The limit that ended a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitHit {
    /// Linear memory would have grown past `limits.memory`.
    #[error("memory limit of {limit} bytes exceeded (the tool asked for {requested} bytes)")]
    Memory {
        /// The limit.
        limit: u64,
        /// The size the guest tried to grow to.
        requested: u64,
    },
    /// The task ran longer than `limits.timeout`.
    #[error("timeout of {0:?} exceeded")]
    Timeout(std::time::Duration),
    /// The task used up `limits.fuel`.
    #[error("fuel limit of {0} exhausted")]
    Fuel(u64),
    /// The tool wrote more than `limits.output` bytes to `stream`, or
    /// returned a result larger than that.
    #[error("output limit of {limit} bytes exceeded on {stream}")]
    Output {
        /// The limit.
        limit: u64,
        /// `stdout`, `stderr` or `result`.
        stream: &'static str,
    },
}

/// Shared record of which limit was hit, readable after the guest traps.
#[derive(Debug, Clone, Default)]
pub struct Tripwire(Arc<Mutex<Option<LimitHit>>>);

impl Tripwire {
    /// Remembers the first limit hit.
    pub fn trip(&self, hit: LimitHit) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(hit);
    }

    /// The limit hit, if any.
    pub fn hit(&self) -> Option<LimitHit> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Caps linear memory and table growth of one task.
#[derive(Debug)]
pub struct Limiter {
    memory: u64,
    tripwire: Tripwire,
    grows: u64,
}

impl Limiter {
    /// A limiter allowing `memory` bytes in total per linear memory.
    pub fn new(memory: u64, tripwire: Tripwire) -> Self {
        Limiter {
            memory,
            tripwire,
            grows: 0,
        }
    }

    /// `memory.grow` and `table.grow` calls the guest made after
    /// instantiation. They are host transitions that are not host calls, so
    /// the runtime subtracts them when it checks that every host call was
    /// recorded.
    pub fn grows(&self) -> u64 {
        self.grows
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grows += u64::from(current > 0);
        if desired as u64 > self.memory {
            let hit = LimitHit::Memory {
                limit: self.memory,
                requested: desired as u64,
            };
            self.tripwire.trip(hit.clone());
            // A trap, not a failed grow: an allocator that sees a failed
            // grow may go on in ways that hide which limit ended the task.
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grows += u64::from(current > 0);
        Ok(desired <= 1_000_000)
    }
}

/// A stdout or stderr pipe that keeps at most `limit` bytes; a write past
/// it trips the output limit and traps the guest.
#[derive(Debug, Clone)]
pub struct CappedPipe {
    buf: Arc<Mutex<Vec<u8>>>,
    limit: u64,
    stream: &'static str,
    tripwire: Tripwire,
}

impl CappedPipe {
    /// A pipe named `stream` (`stdout`, `stderr`) holding up to `limit` bytes.
    pub fn new(stream: &'static str, limit: u64, tripwire: Tripwire) -> Self {
        CappedPipe {
            buf: Arc::default(),
            limit,
            stream,
            tripwire,
        }
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.buf.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn push(&self, bytes: &[u8]) -> Result<(), LimitHit> {
        let mut buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        if (buf.len() + bytes.len()) as u64 > self.limit {
            let hit = LimitHit::Output {
                limit: self.limit,
                stream: self.stream,
            };
            self.tripwire.trip(hit.clone());
            return Err(hit);
        }
        buf.extend_from_slice(bytes);
        Ok(())
    }
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes)
            .map_err(|hit| StreamError::Trap(wasmtime::Error::new(hit)))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always offer room, so the guest's write is what trips the limit
        // and the record says so.
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.push(buf)
                .map(|()| buf.len())
                .map_err(std::io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_trips_past_its_limit_and_keeps_what_fit() {
        let t = Tripwire::default();
        let p = CappedPipe::new("stdout", 4, t.clone());
        assert!(p.push(b"abc").is_ok());
        assert!(p.push(b"de").is_err());
        assert_eq!(p.contents(), b"abc");
        assert_eq!(
            t.hit(),
            Some(LimitHit::Output {
                limit: 4,
                stream: "stdout"
            })
        );
    }

    #[test]
    fn limiter_refuses_growth_past_the_limit() {
        use wasmtime::ResourceLimiter;
        let t = Tripwire::default();
        let mut l = Limiter::new(1 << 20, t.clone());
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        assert!(l.memory_growing(0, 2 << 20, None).is_err());
        assert!(matches!(t.hit(), Some(LimitHit::Memory { .. })));
    }
}
