//! `[limits]` as a [`Capability`]: resolved from the manifest, lowered by `memory=`,
//! `timeout=`, `fuel=` and `output=`, carried in tokens, and described.

use super::manifest::{
    HumanDuration, Limits, LimitsError, RawLimits, Size, format_duration, format_size,
    parse_duration, parse_size,
};
use crate::WardenView;
use crate::capability::{Capability, FieldError, ResolveCx, TaskSetup, WireError};
use crate::grant::{Capabilities, NarrowingReason, Widening, Wider};
use std::fmt;
use std::time::Duration;
use toml::Spanned;
use wasmtime::component::Linker;

/// What one task may spend: memory, time, fuel and output. Unlike the other capabilities,
/// every task holds some: the manifest's, or the defaults.
#[derive(Debug, Clone, Copy)]
pub struct TaskLimits;

/// The limits a narrowing lowers; each given at most once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsNarrowing {
    memory: Option<u64>,
    timeout: Option<Duration>,
    fuel: Option<u64>,
    output: Option<u64>,
}

/// The JSON form: `{"memory": 67108864, "timeout": "10s", "fuel": null, "output": 1048576}`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsWire {
    memory: u64,
    timeout: String,
    /// `null`: unmetered.
    fuel: Option<u64>,
    output: u64,
}

impl Capability for TaskLimits {
    const KEY: &'static str = "limits";
    const NARROWING_KEYS: &'static [&'static str] = &["memory", "timeout", "fuel", "output"];
    type Section = RawLimits;
    type Declared = Self::Grant;
    type Grant = Limits;
    type Narrowing = LimitsNarrowing;
    type Wire = LimitsWire;
    type Error = LimitsError;

    fn resolve(section: &Self::Section, _cx: &ResolveCx<'_>) -> Result<Self::Grant, LimitsError> {
        section.resolve()
    }

    fn ceiling(declared: &Self::Grant) -> Self::Grant {
        *declared
    }

    /// Memory, timeout and output at most the parent's; fuel metered at most as high,
    /// where no fuel limit (unmetered) is the widest.
    fn covers(parent: &Self::Grant, child: &Self::Grant) -> Result<(), Widening> {
        let limit = |limit, child, parent| {
            Err(Wider::new(
                format_args!("limits.{limit}"),
                format_args!("{child} is more than the parent's {parent}"),
            )
            .into())
        };
        if child.memory > parent.memory {
            return limit(
                "memory",
                format_size(child.memory),
                format_size(parent.memory),
            );
        }
        if child.timeout > parent.timeout {
            return limit(
                "timeout",
                format_duration(child.timeout),
                format_duration(parent.timeout),
            );
        }
        if let Some(max) = parent.fuel
            && child.fuel.is_none_or(|fuel| fuel > max)
        {
            let shown = child.fuel.map_or("unmetered".to_owned(), |f| f.to_string());
            return limit("fuel", shown, max.to_string());
        }
        if child.output > parent.output {
            return limit(
                "output",
                format_size(child.output),
                format_size(parent.output),
            );
        }
        Ok(())
    }

    fn push_narrowing(
        narrowing: &mut Self::Narrowing,
        key: &str,
        value: &str,
    ) -> Result<(), NarrowingReason> {
        match key {
            "memory" => set_once(&mut narrowing.memory, key, limit_size(key, value)?),
            "output" => set_once(&mut narrowing.output, key, limit_size(key, value)?),
            "timeout" => set_once(&mut narrowing.timeout, key, timeout(value)?),
            "fuel" => set_once(&mut narrowing.fuel, key, fuel(value)?),
            other => Err(NarrowingReason::UnknownKey(other.to_owned())),
        }
    }

    fn narrowing_args(narrowing: &Self::Narrowing) -> Vec<String> {
        let n = narrowing;
        (n.memory
            .map(|m| format!("memory={}", format_size(m)))
            .into_iter())
        .chain(n.timeout.map(|t| format!("timeout={}", format_duration(t))))
        .chain(n.fuel.map(|f| format!("fuel={f}")))
        .chain(n.output.map(|o| format!("output={}", format_size(o))))
        .collect()
    }

    fn narrow(parent: &Self::Grant, narrowing: &Self::Narrowing) -> Result<Self::Grant, Widening> {
        Ok(Limits {
            memory: narrowing.memory.unwrap_or(parent.memory),
            timeout: narrowing.timeout.unwrap_or(parent.timeout),
            fuel: narrowing.fuel.or(parent.fuel),
            output: narrowing.output.unwrap_or(parent.output),
        })
    }

    fn to_wire(grant: &Self::Grant) -> Result<Self::Wire, WireError> {
        Ok(LimitsWire {
            memory: grant.memory,
            timeout: format_duration(grant.timeout),
            fuel: grant.fuel,
            output: grant.output,
        })
    }

    fn from_wire(wire: Self::Wire) -> Result<Self::Grant, WireError> {
        let timeout =
            parse_duration(&wire.timeout).map_err(|e| WireError::new("limits.timeout", e))?;
        let fuel =
            match wire.fuel {
                None => None,
                Some(fuel) => Some(i64::try_from(fuel).map_err(|_| {
                    WireError::new("limits.fuel", format_args!("{fuel} is too large"))
                })?),
            };
        // The manifest's own `[limits]` check: the same bounds, the same words.
        RawLimits {
            memory: Some(Spanned::new(0..0, Size(wire.memory))),
            timeout: Some(Spanned::new(0..0, HumanDuration(timeout))),
            fuel: fuel.map(|f| Spanned::new(0..0, f)),
            output: Some(Spanned::new(0..0, Size(wire.output))),
        }
        .resolve()
        .map_err(|e| WireError::new(e.field(), e))
    }

    /// `task.start` does not list the limits.
    fn configure(_grant: &Self::Grant, _setup: &mut TaskSetup<'_>) {
        // The store applies them: its memory limiter, fuel and epoch deadline.
    }

    fn add_to_linker<T: WardenView>(_linker: &mut Linker<T>) -> wasmtime::Result<()> {
        Ok(())
    }

    fn summary(_declared: &Self::Grant, _grant: &Self::Grant) -> Option<serde_json::Value> {
        None
    }

    fn describe(grant: &Self::Grant, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(out, "limits: {grant}")
    }

    fn denied(_grant: &Self::Grant) -> Option<&'static str> {
        None
    }

    fn ungranted(_grant: &Self::Grant, _import: &str) -> Option<String> {
        None
    }
}

fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), NarrowingReason> {
    if slot.is_some() {
        return Err(NarrowingReason::Repeated(key.to_owned()));
    }
    *slot = Some(value);
    Ok(())
}

/// A size within the bounds a manifest's `limits.memory` or `limits.output` has; the
/// manifest's own check decides, so that both say the same.
fn limit_size(key: &str, value: &str) -> Result<u64, NarrowingReason> {
    let bytes = parse_size(value).map_err(NarrowingReason::invalid)?;
    let size = Some(Spanned::new(0..0, Size(bytes)));
    let raw = match key {
        "memory" => RawLimits {
            memory: size,
            ..RawLimits::default()
        },
        _ => RawLimits {
            output: size,
            ..RawLimits::default()
        },
    };
    raw.resolve()
        .map_err(|e| NarrowingReason::OutOfRange(e.to_string()))?;
    Ok(bytes)
}

fn timeout(value: &str) -> Result<Duration, NarrowingReason> {
    let timeout = parse_duration(value).map_err(NarrowingReason::invalid)?;
    RawLimits {
        timeout: Some(Spanned::new(0..0, HumanDuration(timeout))),
        ..RawLimits::default()
    }
    .resolve()
    .map_err(|e| NarrowingReason::OutOfRange(e.to_string()))?;
    Ok(timeout)
}

fn fuel(value: &str) -> Result<u64, NarrowingReason> {
    let bad = || {
        NarrowingReason::invalid(format_args!(
            "expected a positive whole number of instructions such as 1000000, found {value:?}"
        ))
    };
    let well_formed = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && !value.starts_with('_')
        && !value.ends_with('_');
    if !well_formed {
        return Err(bad());
    }
    // At most i64::MAX, as a manifest's `fuel` (a TOML integer) can be.
    match value.replace('_', "").parse::<i64>() {
        Ok(fuel @ 1..) => Ok(fuel.unsigned_abs()),
        _ => Err(bad()),
    }
}

impl Capabilities {
    /// Memory, time, fuel and output limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}
