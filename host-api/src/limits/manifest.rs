//! The `[limits]` manifest section: how much memory, time, fuel and output one task may use.
//!
//! ```toml
//! [limits]
//! memory = "64 MiB"        # linear memory, all instances of the task together
//! timeout = "5s"           # wall clock, enforced by epoch interruption
//! fuel = 5_000_000_000     # optional: instructions, only metered when set
//! output = "1 MiB"         # result JSON or stdout
//! ```
//!
//! Every key is optional; a missing key takes its default ([`Limits::default`]). Sizes are
//! written as an integer number of bytes or a string with a unit ([`parse_size`]); durations
//! as a string with a unit ([`parse_duration`]). A bare integer is refused for durations
//! because nobody can tell whether `timeout = 5` meant seconds or milliseconds.
//!
//! # Example
//!
//! ```
//! use warden_host_api::limits::manifest::{Limits, RawLimits};
//!
//! let raw: RawLimits = toml::from_str(r#"memory = "128 MiB""#).unwrap();
//! let limits = raw.resolve().unwrap();
//! assert_eq!(limits.memory, 128 * 1024 * 1024);
//! assert_eq!(limits.timeout, Limits::default().timeout);
//! ```

use crate::capability::FieldError;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use toml::Spanned;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

/// Default `memory`: 64 MiB.
pub const DEFAULT_MEMORY: u64 = 64 * MIB;
/// Default `timeout`: 10 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `output`: 1 MiB.
pub const DEFAULT_OUTPUT: u64 = MIB;
/// Smallest `memory` a manifest may ask for: 1 MiB.
///
/// Below that even a minimal Rust component cannot instantiate, so a smaller value is a
/// mistake in units rather than a real limit.
pub const MIN_MEMORY: u64 = MIB;
/// Largest `memory` a manifest may ask for: 4 GiB, the wasm32 address space.
pub const MAX_MEMORY: u64 = 4 * GIB;
/// Longest `timeout` a manifest may ask for: 1 hour.
///
/// A tool call that needs longer is a batch job, not a tool; the bound keeps a typo such as
/// `"5h"` for `"5s"` from pinning a worker.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The limits of one task, validated and with defaults applied.
///
/// ```toml
/// [limits]
/// memory = "64 MiB"
/// timeout = "10s"
/// output = "1 MiB"
/// # fuel is unset: instructions are not metered
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum linear memory in bytes, between [`MIN_MEMORY`] and [`MAX_MEMORY`].
    pub memory: u64,
    /// Wall-clock time one call may take, greater than zero and at most [`MAX_TIMEOUT`].
    pub timeout: Duration,
    /// Instruction fuel per call, or `None` to leave fuel metering off (it costs up to +66% on
    /// call-heavy code, so it is opt-in).
    pub fuel: Option<u64>,
    /// Maximum size in bytes of the result (JSON or stdout), at least 1.
    pub output: u64,
}

impl Default for Limits {
    /// 64 MiB memory, 10 s timeout, no fuel metering, 1 MiB output.
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            fuel: None,
            output: DEFAULT_OUTPUT,
        }
    }
}

impl fmt::Display for Limits {
    /// `memory 64 MiB, timeout 10s, fuel unmetered, output 1 MiB`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory {}, timeout {}, ",
            format_size(self.memory),
            format_duration(self.timeout)
        )?;
        match self.fuel {
            Some(fuel) => write!(f, "fuel {fuel}")?,
            None => f.write_str("fuel unmetered")?,
        }
        write!(f, ", output {}", format_size(self.output))
    }
}

/// The `[limits]` section as written, before defaults and bounds are applied.
///
/// Each value keeps its span in the manifest source so that an error can name its line.
///
/// ```toml
/// [limits]
/// memory = "256 MiB"
/// timeout = "1.5s"
/// fuel = 1_000_000
/// output = 65536
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// `memory = "64 MiB"`: see [`Limits::memory`].
    pub memory: Option<Spanned<Size>>,
    /// `timeout = "5s"`: see [`Limits::timeout`].
    pub timeout: Option<Spanned<HumanDuration>>,
    /// `fuel = 5_000_000_000`: see [`Limits::fuel`]. Signed so that a negative value gets an
    /// error of ours rather than serde's.
    pub fuel: Option<Spanned<i64>>,
    /// `output = "1 MiB"`: see [`Limits::output`].
    pub output: Option<Spanned<Size>>,
}

impl RawLimits {
    /// Applies defaults and checks bounds.
    pub fn resolve(&self) -> Result<Limits, LimitsError> {
        let mut limits = Limits::default();
        if let Some(memory) = &self.memory {
            let value = memory.get_ref().0;
            if !(MIN_MEMORY..=MAX_MEMORY).contains(&value) {
                return Err(LimitsError::MemoryOutOfRange {
                    value,
                    span: memory.span(),
                });
            }
            limits.memory = value;
        }
        if let Some(timeout) = &self.timeout {
            let value = timeout.get_ref().0;
            if value.is_zero() || value > MAX_TIMEOUT {
                return Err(LimitsError::TimeoutOutOfRange {
                    value,
                    span: timeout.span(),
                });
            }
            limits.timeout = value;
        }
        if let Some(fuel) = &self.fuel {
            let value = *fuel.get_ref();
            // Zero fuel would trap on the first instruction: certainly not what was meant.
            let Ok(fuel_u64 @ 1..) = u64::try_from(value) else {
                return Err(LimitsError::FuelNotPositive {
                    value,
                    span: fuel.span(),
                });
            };
            limits.fuel = Some(fuel_u64);
        }
        if let Some(output) = &self.output {
            let value = output.get_ref().0;
            if value == 0 {
                return Err(LimitsError::OutputZero {
                    span: output.span(),
                });
            }
            limits.output = value;
        }
        Ok(limits)
    }
}

/// A `[limits]` value that parsed but is out of bounds.
///
/// [`field`](Self::field) and [`span`](Self::span) say where; `Display` says what, in
/// lowercase and without the field name, so the caller can prefix file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// `memory` is below [`MIN_MEMORY`] or above [`MAX_MEMORY`].
    #[error("{} is out of range, expected between {} and {}", format_size(*value), format_size(MIN_MEMORY), format_size(MAX_MEMORY))]
    MemoryOutOfRange {
        /// The requested memory in bytes.
        value: u64,
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
    },
    /// `timeout` is zero or above [`MAX_TIMEOUT`].
    #[error("{} is out of range, expected more than 0s and at most {}", format_duration(*value), format_duration(MAX_TIMEOUT))]
    TimeoutOutOfRange {
        /// The requested timeout.
        value: Duration,
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
    },
    /// `fuel` is zero or negative.
    #[error("expected a positive integer, found {value}")]
    FuelNotPositive {
        /// The value as written.
        value: i64,
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
    },
    /// `output` is zero bytes.
    #[error("expected at least 1 byte, found 0 B")]
    OutputZero {
        /// Byte range of the value in the manifest source.
        span: Range<usize>,
    },
}

impl FieldError for LimitsError {
    /// The dotted manifest field the error is about, e.g. `limits.memory`.
    fn field(&self) -> String {
        match self {
            LimitsError::MemoryOutOfRange { .. } => "limits.memory".into(),
            LimitsError::TimeoutOutOfRange { .. } => "limits.timeout".into(),
            LimitsError::FuelNotPositive { .. } => "limits.fuel".into(),
            LimitsError::OutputZero { .. } => "limits.output".into(),
        }
    }

    /// Byte range of the offending value in the manifest source.
    fn span(&self) -> Range<usize> {
        match self {
            LimitsError::MemoryOutOfRange { span, .. }
            | LimitsError::TimeoutOutOfRange { span, .. }
            | LimitsError::FuelNotPositive { span, .. }
            | LimitsError::OutputZero { span } => span.clone(),
        }
    }
}

/// A byte count read from TOML: an integer number of bytes or a string accepted by
/// [`parse_size`].
///
/// ```toml
/// memory = "64 MiB"
/// output = 1048576
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = Size;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"64 MiB\" or a number of bytes")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v).map(Size).map_err(|_| {
                    E::custom(format_args!(
                        "expected a size such as \"64 MiB\", found {v}"
                    ))
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A duration read from TOML: a string accepted by [`parse_duration`].
///
/// ```toml
/// timeout = "250ms"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format_args!(
                    "expected a duration with a unit such as \"{v}s\" or \"{v}ms\", found {v}"
                )))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format_args!(
                        "expected a duration such as \"5s\", found {v}"
                    ))),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

/// Why a size string was refused. Each variant carries the whole input as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeError {
    /// No number where one was expected, e.g. `""`, `"MiB"` or `"lots"`.
    #[error("expected a size such as \"64 MiB\", found {0:?}")]
    Invalid(String),
    /// The unit is not one of `B`, `kB`, `MB`, `GB`, `TB`, `KiB`, `MiB`, `GiB`, `TiB`.
    #[error(
        "unknown unit {unit:?} in {input:?}, expected one of B, kB, MB, GB, TB, KiB, MiB, GiB, TiB"
    )]
    UnknownUnit {
        /// The whole input.
        input: String,
        /// The unit as written.
        unit: String,
    },
    /// A fraction that does not come out to a whole number of bytes, e.g. `"1.5 B"`.
    #[error("{0:?} is not a whole number of bytes")]
    Fractional(String),
    /// More than `u64::MAX` bytes.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses a human-readable size into bytes.
///
/// A number (digits, optional `_` separators, optional fraction) followed by an optional
/// unit, with or without a space. Units are case-insensitive: `B`; decimal `kB` = 10³, `MB`,
/// `GB`, `TB`; binary `KiB` = 2¹⁰, `MiB`, `GiB`, `TiB`. No unit means bytes. Bare `K`, `M`,
/// `G` are refused because readers disagree on whether they are decimal or binary.
///
/// ```
/// use warden_host_api::limits::manifest::parse_size;
///
/// assert_eq!(parse_size("64 MiB").unwrap(), 64 << 20);
/// assert_eq!(parse_size("10 MB").unwrap(), 10_000_000);
/// assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
/// assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
/// assert!(parse_size("64 M").is_err());
/// ```
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let trimmed = input.trim();
    let (number, unit) = split_number(trimmed);
    let unit = unit.trim_start();
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        "tib" => TIB,
        _ if number.is_empty() => return Err(SizeError::Invalid(input.to_owned())),
        _ => {
            return Err(SizeError::UnknownUnit {
                input: input.to_owned(),
                unit: unit.to_owned(),
            });
        }
    };
    let Some(decimal) = Decimal::parse(number) else {
        return Err(SizeError::Invalid(input.to_owned()));
    };
    match decimal.scale(u128::from(multiplier)) {
        Scaled::Exact(bytes) => {
            u64::try_from(bytes).map_err(|_| SizeError::TooLarge(input.to_owned()))
        }
        Scaled::Inexact => Err(SizeError::Fractional(input.to_owned())),
        Scaled::Overflow => Err(SizeError::TooLarge(input.to_owned())),
    }
}

/// Why a duration string was refused. Each variant carries the whole input as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Not a sequence of number-unit pairs, e.g. `""`, `"s"` or `"soon"`.
    #[error("expected a duration such as \"5s\", found {0:?}")]
    Invalid(String),
    /// A number without a unit, e.g. `"5"`: seconds and milliseconds are both plausible.
    #[error("missing unit in {0:?}, expected one of ns, us, ms, s, m, h")]
    MissingUnit(String),
    /// The unit is not one of `ns`, `us` (or `µs`), `ms`, `s`, `m` (or `min`), `h`.
    #[error("unknown unit {unit:?} in {input:?}, expected one of ns, us, ms, s, m, h")]
    UnknownUnit {
        /// The whole input.
        input: String,
        /// The unit as written.
        unit: String,
    },
    /// Longer than any timeout could be.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses a human-readable duration.
///
/// One or more number-unit pairs, optionally separated by spaces: `"5s"`, `"250ms"`,
/// `"1.5s"`, `"2m"`, `"1m 30s"`. Units: `ns`, `us` or `µs`, `ms`, `s`, `m` or `min`, `h`.
/// Fractions below a nanosecond are dropped.
///
/// ```
/// use std::time::Duration;
/// use warden_host_api::limits::manifest::parse_duration;
///
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
/// assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let mut rest = input.trim();
    if rest.is_empty() {
        return Err(DurationError::Invalid(input.to_owned()));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (number, after) = split_number(rest);
        let Some(decimal) = Decimal::parse(number) else {
            return Err(DurationError::Invalid(input.to_owned()));
        };
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "" => return Err(DurationError::MissingUnit(input.to_owned())),
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    input: input.to_owned(),
                    unit: unit.to_owned(),
                });
            }
        };
        let nanos = match decimal.scale(nanos_per_unit) {
            Scaled::Exact(n) => n,
            Scaled::Inexact => decimal.scale_truncated(nanos_per_unit),
            Scaled::Overflow => return Err(DurationError::TooLarge(input.to_owned())),
        };
        total = total
            .checked_add(nanos)
            .ok_or_else(|| DurationError::TooLarge(input.to_owned()))?;
        rest = after.trim_start();
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| DurationError::TooLarge(input.to_owned()))?;
    let nanos = u32::try_from(total % 1_000_000_000).expect("remainder below 10^9");
    Ok(Duration::new(secs, nanos))
}

/// Formats a byte count the way a manifest would write it: the largest binary unit that
/// divides it, else the largest decimal one, else bytes.
///
/// ```
/// use warden_host_api::limits::manifest::format_size;
///
/// assert_eq!(format_size(64 << 20), "64 MiB");
/// assert_eq!(format_size(10_000_000), "10 MB");
/// assert_eq!(format_size(1000 + 1), "1001 B");
/// ```
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 8] = [
        (TIB, "TiB"),
        (GIB, "GiB"),
        (MIB, "MiB"),
        (KIB, "KiB"),
        (1_000_000_000_000, "TB"),
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1_000, "kB"),
    ];
    if bytes != 0 {
        for (size, unit) in UNITS {
            if bytes.is_multiple_of(size) {
                return format!("{} {unit}", bytes / size);
            }
        }
    }
    format!("{bytes} B")
}

/// Formats a duration the way a manifest would write it.
///
/// ```
/// use std::time::Duration;
/// use warden_host_api::limits::manifest::format_duration;
///
/// assert_eq!(format_duration(Duration::from_secs(10)), "10s");
/// assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
/// assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
/// assert_eq!(format_duration(Duration::from_secs(120)), "2m");
/// ```
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return match secs {
            0 => "0s".to_owned(),
            s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
            s if s.is_multiple_of(60) => format!("{}m", s / 60),
            s => format!("{s}s"),
        };
    }
    if secs == 0 {
        return match nanos {
            n if n.is_multiple_of(1_000_000) => format!("{}ms", n / 1_000_000),
            n if n.is_multiple_of(1_000) => format!("{}us", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let fraction = format!("{nanos:09}");
    format!("{secs}.{}s", fraction.trim_end_matches('0'))
}

/// Splits `"1.5 KiB"` into `("1.5", " KiB")`.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    s.split_at(end)
}

/// A non-negative decimal number kept exact, so that `"1.5 KiB"` is exactly 1536 bytes
/// rather than whatever a float rounds it to.
struct Decimal {
    /// All digits, the fraction's included.
    digits: u128,
    /// How many of `digits` are after the point.
    fraction_digits: u32,
}

enum Scaled {
    Exact(u128),
    Inexact,
    Overflow,
}

impl Decimal {
    fn parse(s: &str) -> Option<Decimal> {
        let (whole, fraction) = match s.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (s, ""),
        };
        let valid = |part: &str| {
            part.bytes().all(|b| b.is_ascii_digit() || b == b'_')
                && !part.starts_with('_')
                && !part.ends_with('_')
                && !part.contains("__")
        };
        if whole.is_empty() || !valid(whole) || !valid(fraction) {
            return None;
        }
        // Beyond 18 fraction digits nothing representable changes, and 10^18 keeps the
        // arithmetic below in u128.
        let fraction = fraction.replace('_', "");
        let fraction = &fraction[..fraction.len().min(18)];
        let mut digits: u128 = 0;
        for b in whole.bytes().chain(fraction.bytes()).filter(|b| *b != b'_') {
            digits = digits.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
        }
        Some(Decimal {
            digits,
            fraction_digits: u32::try_from(fraction.len()).ok()?,
        })
    }

    fn scale(&self, unit: u128) -> Scaled {
        let Some(product) = self.digits.checked_mul(unit) else {
            return Scaled::Overflow;
        };
        let divisor = 10u128.pow(self.fraction_digits);
        if product % divisor == 0 {
            Scaled::Exact(product / divisor)
        } else {
            Scaled::Inexact
        }
    }

    fn scale_truncated(&self, unit: u128) -> u128 {
        // Only called after `scale` returned Inexact, so the product did not overflow.
        self.digits * unit / 10u128.pow(self.fraction_digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1048576", MIB),
            ("1_048_576", MIB),
            ("1 B", 1),
            ("1B", 1),
            ("512 KiB", 512 * KIB),
            ("64 MiB", 64 * MIB),
            ("64mib", 64 * MIB),
            ("1 GiB", GIB),
            ("4 GiB", 4 * GIB),
            ("2 TiB", 2 * TIB),
            ("10 MB", 10_000_000),
            ("1 kB", 1000),
            ("1 KB", 1000),
            ("3 GB", 3_000_000_000),
            ("1.5 KiB", 1536),
            ("0.5 MiB", 512 * KIB),
            ("  64 MiB  ", 64 * MIB),
            ("18446744073709551615", u64::MAX),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_size(input), Ok(*expected), "{input:?}");
        }
    }

    #[test]
    fn bad_sizes() {
        let cases: &[(&str, &str)] = &[
            ("", "expected a size such as \"64 MiB\", found \"\""),
            ("MiB", "expected a size such as \"64 MiB\", found \"MiB\""),
            ("lots", "expected a size such as \"64 MiB\", found \"lots\""),
            (
                "1.2.3 MiB",
                "expected a size such as \"64 MiB\", found \"1.2.3 MiB\"",
            ),
            (
                ".5 MiB",
                "expected a size such as \"64 MiB\", found \".5 MiB\"",
            ),
            (
                "-1 MiB",
                "expected a size such as \"64 MiB\", found \"-1 MiB\"",
            ),
            (
                "64 M",
                "unknown unit \"M\" in \"64 M\", expected one of B, kB, MB, GB, TB, KiB, MiB, GiB, TiB",
            ),
            (
                "64 megs",
                "unknown unit \"megs\" in \"64 megs\", expected one of B, kB, MB, GB, TB, KiB, MiB, GiB, TiB",
            ),
            ("1.5 B", "\"1.5 B\" is not a whole number of bytes"),
            (
                "18446744073709551616",
                "\"18446744073709551616\" is too large",
            ),
            ("100000000 TiB", "\"100000000 TiB\" is too large"),
        ];
        for (input, message) in cases {
            let err = parse_size(input).expect_err(input);
            assert_eq!(err.to_string(), *message, "{input:?}");
        }
    }

    #[test]
    fn durations() {
        let cases: &[(&str, Duration)] = &[
            ("5s", Duration::from_secs(5)),
            ("5 s", Duration::from_secs(5)),
            ("250ms", Duration::from_millis(250)),
            ("2m", Duration::from_secs(120)),
            ("2min", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("0.25s", Duration::from_millis(250)),
            ("1m30s", Duration::from_secs(90)),
            ("1m 30s", Duration::from_secs(90)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("1.0000000005s", Duration::from_secs(1)),
            ("0s", Duration::ZERO),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input), Ok(*expected), "{input:?}");
        }
    }

    #[test]
    fn bad_durations() {
        let cases: &[(&str, &str)] = &[
            ("", "expected a duration such as \"5s\", found \"\""),
            ("s", "expected a duration such as \"5s\", found \"s\""),
            ("soon", "expected a duration such as \"5s\", found \"soon\""),
            ("-5s", "expected a duration such as \"5s\", found \"-5s\""),
            (
                "5",
                "missing unit in \"5\", expected one of ns, us, ms, s, m, h",
            ),
            (
                "1m30",
                "missing unit in \"1m30\", expected one of ns, us, ms, s, m, h",
            ),
            (
                "5 secs",
                "unknown unit \"secs\" in \"5 secs\", expected one of ns, us, ms, s, m, h",
            ),
            (
                "5d",
                "unknown unit \"d\" in \"5d\", expected one of ns, us, ms, s, m, h",
            ),
            (
                "99999999999999999999999h",
                "\"99999999999999999999999h\" is too large",
            ),
        ];
        for (input, message) in cases {
            let err = parse_duration(input).expect_err(input);
            assert_eq!(err.to_string(), *message, "{input:?}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for bytes in [1, 999, 1000, 1024, 1536, MIB, 10_000_000, 4 * GIB] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes), "{bytes}");
        }
        for millis in [1, 250, 1000, 1500, 60_000, 90_000, 3_600_000] {
            let d = Duration::from_millis(millis);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert_eq!(
            format_duration(Duration::from_nanos(1_000_000_007)),
            "1.000000007s"
        );
    }

    #[test]
    fn bounds() {
        let raw: RawLimits = toml::from_str("memory = \"512 KiB\"").unwrap();
        assert_eq!(
            raw.resolve().unwrap_err().to_string(),
            "512 KiB is out of range, expected between 1 MiB and 4 GiB"
        );
        let raw: RawLimits = toml::from_str("timeout = \"2h\"").unwrap();
        assert_eq!(
            raw.resolve().unwrap_err().to_string(),
            "2h is out of range, expected more than 0s and at most 1h"
        );
        let raw: RawLimits = toml::from_str("fuel = 0").unwrap();
        assert_eq!(raw.resolve().unwrap_err().field(), "limits.fuel");
        let raw: RawLimits = toml::from_str("output = 0").unwrap();
        assert_eq!(raw.resolve().unwrap_err().field(), "limits.output");
        let raw: RawLimits = toml::from_str("").unwrap();
        assert_eq!(raw.resolve().unwrap(), Limits::default());
    }
}
