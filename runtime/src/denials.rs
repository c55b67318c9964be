//! The calls a task was refused, in words, for whoever asked for the task: an MCP client's
//! result, or a fleet worker's reply.

use std::sync::{Arc, Mutex, PoisonError};
use warden_host_api::audit::{Decision, EventSink, Receipt, Record};

/// Passes every record on to the log, and keeps what each deny says.
pub(crate) struct Denials {
    sink: Arc<dyn EventSink>,
    seen: Mutex<Vec<String>>,
}

/// At most this many denials are spelt out: a tool looping on a refused call must not
/// make the answer unbounded.
pub(crate) const MAX_DENIALS: usize = 8;

impl Denials {
    pub(crate) fn new(sink: Arc<dyn EventSink>) -> Denials {
        Denials {
            sink,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The denials so far, leaving none.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl EventSink for Denials {
    fn emit(&self, record: &Record<'_>) -> anyhow::Result<()> {
        self.sink.emit(record)?;
        self.note(record);
        Ok(())
    }

    fn end(&self, record: &Record<'_>) -> anyhow::Result<Receipt> {
        let receipt = self.sink.end(record)?;
        self.note(record);
        Ok(receipt)
    }
}

impl Denials {
    fn note(&self, record: &Record<'_>) {
        let e = record.event;
        if e.decision == Some(Decision::Deny) {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.len() < MAX_DENIALS {
                let call = e.call.unwrap_or(e.event);
                let resource = e.resource.as_deref().unwrap_or("-");
                let rule = e.rule.as_deref().unwrap_or("no rule allows it");
                seen.push(format!("{call} on {resource}: {rule}"));
            }
        }
    }
}
