//! Human-friendly units for link parameters: `50ms`, `10mbit`, `256KiB`, `1%`.
//!
//! The parsers are strict: a number, then a unit from a short list, nothing else. Decimals are
//! exact (no floating point): `1.5ms` is 1 500 000 ns, `0.25%` is 2500 parts per million.
//!
//! | kind | accepted | examples |
//! | --- | --- | --- |
//! | duration | `ns`, `us` (`µs`), `ms`, `s`; a bare `0` | `50ms`, `1.5s`, `200us`, `0` |
//! | rate (bits/s, SI) | `bit`, `kbit`, `mbit`, `gbit` (optionally `/s`); `unlimited`, `none`, `off` | `10mbit`, `1gbit`, `2.5mbit/s` |
//! | size (bytes, binary as in `tc`) | none or `b`; `k`/`kb`/`kib`; `m`/`mb`/`mib`; `g`/`gb`/`gib` | `64k`, `256KiB`, `1500` |
//! | loss | a percentage with up to 4 decimals; a bare `0` | `1%`, `0.5%`, `0` |
//!
//! Units are case-insensitive. `mbps`-style rates are refused because `tc` reads them as
//! megabytes per second while most people mean megabits; write `mbit` or `8mbit`.

use std::fmt;
use std::time::Duration;

/// What a parameter string failed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("{what} `{input}` is empty")]
    Empty { what: &'static str, input: String },
    #[error("{what} `{input}` must not be negative")]
    Negative { what: &'static str, input: String },
    #[error("{what} `{input}` does not start with a number")]
    NotANumber { what: &'static str, input: String },
    #[error("{what} `{input}` needs a unit: {units}")]
    MissingUnit {
        what: &'static str,
        input: String,
        units: &'static str,
    },
    #[error("{what} `{input}` has unknown unit `{unit}`; use one of: {units}")]
    UnknownUnit {
        what: &'static str,
        input: String,
        unit: String,
        units: &'static str,
    },
    #[error("{what} `{input}` is too large")]
    TooLarge { what: &'static str, input: String },
    #[error("rate `{input}` is zero; omit the rate or write `unlimited` for no limit")]
    ZeroRate { input: String },
    #[error("rate `{input}` is ambiguous (tc reads `bps` as bytes per second); write bits, e.g. `10mbit`")]
    AmbiguousRate { input: String },
    #[error("loss `{input}` is above 100%")]
    LossAbove100 { input: String },
    #[error("{what} `{input}` has more than {max} decimals")]
    TooPrecise {
        what: &'static str,
        input: String,
        max: u32,
    },
}

const DURATION_UNITS: &str = "ns, us, ms, s";
const RATE_UNITS: &str = "bit, kbit, mbit, gbit (or `unlimited`)";
const SIZE_UNITS: &str = "b, k/KiB, m/MiB, g/GiB";

/// Splits `12.5ms` into (`12`, `5`, `ms`), refusing signs and empty numbers.
fn split_number<'a>(
    what: &'static str,
    input: &'a str,
) -> Result<(&'a str, &'a str, &'a str), UnitError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(UnitError::Empty {
            what,
            input: input.to_owned(),
        });
    }
    if s.starts_with('-') {
        return Err(UnitError::Negative {
            what,
            input: input.to_owned(),
        });
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(UnitError::NotANumber {
            what,
            input: input.to_owned(),
        });
    }
    Ok((int, frac, unit.trim()))
}

/// `int.frac * scale`, exactly, truncating what `scale` cannot resolve. `None` on overflow.
fn scaled(int: &str, frac: &str, scale: u128) -> Option<u128> {
    let mut value: u128 = 0;
    for d in int.bytes() {
        value = value.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
    }
    value = value.checked_mul(scale)?;
    // Digits beyond 18 are below any resolution we use (scales are at most 2^30 or 10^9).
    let (mut num, mut den) = (0u128, 1u128);
    for d in frac.bytes().take(18) {
        num = num * 10 + u128::from(d - b'0');
        den *= 10;
    }
    value.checked_add(num * scale / den)
}

/// Parses a duration such as `50ms`, `1.5s`, `200us` or `0`.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    const WHAT: &str = "duration";
    let (int, frac, unit) = split_number(WHAT, input)?;
    let scale: u128 = match unit.to_ascii_lowercase().as_str() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "" if is_zero(int, frac) => 1,
        "" => {
            return Err(UnitError::MissingUnit {
                what: WHAT,
                input: input.to_owned(),
                units: DURATION_UNITS,
            })
        }
        _ => {
            return Err(UnitError::UnknownUnit {
                what: WHAT,
                input: input.to_owned(),
                unit: unit.to_owned(),
                units: DURATION_UNITS,
            })
        }
    };
    let too_large = || UnitError::TooLarge {
        what: WHAT,
        input: input.to_owned(),
    };
    let nanos = scaled(int, frac, scale).ok_or_else(too_large)?;
    // A day is far beyond any sensible link delay; refusing it keeps arithmetic overflow-free.
    if nanos > 86_400 * 1_000_000_000 {
        return Err(too_large());
    }
    Ok(Duration::from_nanos(
        u64::try_from(nanos).map_err(|_| too_large())?,
    ))
}

fn is_zero(int: &str, frac: &str) -> bool {
    int.bytes().chain(frac.bytes()).all(|d| d == b'0')
}

/// A positive rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rate(std::num::NonZeroU64);

impl Rate {
    /// A rate of `bits` per second; `None` for zero.
    pub fn from_bits_per_sec(bits: u64) -> Option<Rate> {
        std::num::NonZeroU64::new(bits).map(Rate)
    }

    /// Bits per second.
    pub fn bits_per_sec(self) -> u64 {
        self.0.get()
    }

    /// Time to send `bytes` at this rate, in nanoseconds (rounded up).
    pub fn nanos_for(self, bytes: u64) -> u64 {
        let n = u128::from(bytes) * 8 * 1_000_000_000;
        let r = u128::from(self.0.get());
        u64::try_from(n.div_ceil(r)).unwrap_or(u64::MAX)
    }

    /// Bytes this rate carries in `nanos` nanoseconds (rounded down).
    pub fn bytes_in(self, nanos: u64) -> u64 {
        let b = u128::from(self.0.get()) * u128::from(nanos) / 8 / 1_000_000_000;
        u64::try_from(b).unwrap_or(u64::MAX)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0.get();
        for (div, unit) in [
            (1_000_000_000, "gbit"),
            (1_000_000, "mbit"),
            (1_000, "kbit"),
        ] {
            if b.is_multiple_of(div) {
                return write!(f, "{}{unit}", b / div);
            }
        }
        write!(f, "{b}bit")
    }
}

/// Parses a rate such as `10mbit`; `unlimited`/`none`/`off` give `None`.
pub fn parse_rate(input: &str) -> Result<Option<Rate>, UnitError> {
    const WHAT: &str = "rate";
    if matches!(
        input.trim().to_ascii_lowercase().as_str(),
        "unlimited" | "none" | "off"
    ) {
        return Ok(None);
    }
    let (int, frac, unit) = split_number(WHAT, input)?;
    let lower = unit.to_ascii_lowercase();
    let unit_core = lower.strip_suffix("/s").unwrap_or(&lower);
    let scale: u128 = match unit_core {
        "bit" => 1,
        "kbit" => 1_000,
        "mbit" => 1_000_000,
        "gbit" => 1_000_000_000,
        "bps" | "kbps" | "mbps" | "gbps" => {
            return Err(UnitError::AmbiguousRate {
                input: input.to_owned(),
            })
        }
        "" if is_zero(int, frac) => {
            return Err(UnitError::ZeroRate {
                input: input.to_owned(),
            })
        }
        "" => {
            return Err(UnitError::MissingUnit {
                what: WHAT,
                input: input.to_owned(),
                units: RATE_UNITS,
            })
        }
        _ => {
            return Err(UnitError::UnknownUnit {
                what: WHAT,
                input: input.to_owned(),
                unit: unit.to_owned(),
                units: RATE_UNITS,
            })
        }
    };
    let bits = scaled(int, frac, scale).ok_or_else(|| UnitError::TooLarge {
        what: WHAT,
        input: input.to_owned(),
    })?;
    if bits > 10_000_000_000_000 {
        return Err(UnitError::TooLarge {
            what: WHAT,
            input: input.to_owned(),
        });
    }
    let bits = u64::try_from(bits).map_err(|_| UnitError::TooLarge {
        what: WHAT,
        input: input.to_owned(),
    })?;
    Rate::from_bits_per_sec(bits)
        .map(Some)
        .ok_or_else(|| UnitError::ZeroRate {
            input: input.to_owned(),
        })
}

/// Parses a byte size such as `64k`, `256KiB` or `1500`.
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    const WHAT: &str = "size";
    let (int, frac, unit) = split_number(WHAT, input)?;
    let scale: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(UnitError::UnknownUnit {
                what: WHAT,
                input: input.to_owned(),
                unit: unit.to_owned(),
                units: SIZE_UNITS,
            })
        }
    };
    let bytes = scaled(int, frac, scale).ok_or_else(|| UnitError::TooLarge {
        what: WHAT,
        input: input.to_owned(),
    })?;
    if bytes > 1 << 40 {
        return Err(UnitError::TooLarge {
            what: WHAT,
            input: input.to_owned(),
        });
    }
    u64::try_from(bytes).map_err(|_| UnitError::TooLarge {
        what: WHAT,
        input: input.to_owned(),
    })
}

/// A loss probability in parts per million (0..=1 000 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Loss(u32);

impl Loss {
    /// One million parts per million: every packet is lost.
    pub const PPM_MAX: u32 = 1_000_000;

    /// A loss of `ppm` parts per million; `None` above 100%.
    pub fn from_ppm(ppm: u32) -> Option<Loss> {
        (ppm <= Self::PPM_MAX).then_some(Loss(ppm))
    }

    /// Parts per million.
    pub fn ppm(self) -> u32 {
        self.0
    }

    /// True when no packet is ever lost.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 10_000;
        let frac = self.0 % 10_000;
        if frac == 0 {
            write!(f, "{whole}%")
        } else {
            let digits = format!("{frac:04}");
            write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
        }
    }
}

/// Parses a loss percentage such as `1%` or `0.25%`; a bare `0` is accepted.
pub fn parse_loss(input: &str) -> Result<Loss, UnitError> {
    const WHAT: &str = "loss";
    let (int, frac, unit) = split_number(WHAT, input)?;
    match unit {
        "%" => {}
        "" if is_zero(int, frac) => {}
        "" => {
            return Err(UnitError::MissingUnit {
                what: WHAT,
                input: input.to_owned(),
                units: "% (e.g. 1%)",
            })
        }
        _ => {
            return Err(UnitError::UnknownUnit {
                what: WHAT,
                input: input.to_owned(),
                unit: unit.to_owned(),
                units: "% (e.g. 1%)",
            })
        }
    }
    if frac.len() > 4 {
        return Err(UnitError::TooPrecise {
            what: WHAT,
            input: input.to_owned(),
            max: 4,
        });
    }
    let ppm = scaled(int, frac, 10_000).ok_or_else(|| UnitError::LossAbove100 {
        input: input.to_owned(),
    })?;
    u32::try_from(ppm)
        .ok()
        .and_then(Loss::from_ppm)
        .ok_or_else(|| UnitError::LossAbove100 {
            input: input.to_owned(),
        })
}

/// Formats a duration the way [`parse_duration`] reads it back, in the largest exact unit.
pub fn format_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0ms".to_owned();
    }
    for (div, unit) in [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")] {
        if n.is_multiple_of(div) {
            return format!("{}{unit}", n / div);
        }
    }
    format!("{n}ns")
}

/// Formats a size the way [`parse_size`] reads it back, in the largest exact binary unit.
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_owned();
    }
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("200us"), Ok(Duration::from_micros(200)));
        assert_eq!(parse_duration("200µs"), Ok(Duration::from_micros(200)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(".5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("5MS"), Ok(Duration::from_millis(5)));
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        let e = parse_duration("-5ms").unwrap_err();
        assert_eq!(e.to_string(), "duration `-5ms` must not be negative");
        let e = parse_duration("50").unwrap_err();
        assert_eq!(e.to_string(), "duration `50` needs a unit: ns, us, ms, s");
        assert!(matches!(
            parse_duration("5min"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("ms"),
            Err(UnitError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_duration("1.2.3ms"),
            Err(UnitError::NotANumber { .. })
        ));
        assert!(matches!(parse_duration(""), Err(UnitError::Empty { .. })));
        assert!(matches!(
            parse_duration("99999999999999999999999999999999999999999s"),
            Err(UnitError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_duration("100000s"),
            Err(UnitError::TooLarge { .. })
        ));
    }

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate("10mbit").unwrap().unwrap().bits_per_sec(),
            10_000_000
        );
        assert_eq!(
            parse_rate("2.5Mbit/s").unwrap().unwrap().bits_per_sec(),
            2_500_000
        );
        assert_eq!(
            parse_rate("1gbit").unwrap().unwrap().bits_per_sec(),
            1_000_000_000
        );
        assert_eq!(parse_rate("800bit").unwrap().unwrap().bits_per_sec(), 800);
        assert_eq!(parse_rate("unlimited"), Ok(None));
        assert_eq!(
            parse_rate("0").unwrap_err(),
            UnitError::ZeroRate { input: "0".into() }
        );
        assert_eq!(
            parse_rate("0mbit").unwrap_err(),
            UnitError::ZeroRate {
                input: "0mbit".into()
            }
        );
        assert!(matches!(
            parse_rate("10mbps"),
            Err(UnitError::AmbiguousRate { .. })
        ));
        assert!(matches!(
            parse_rate("10"),
            Err(UnitError::MissingUnit { .. })
        ));
        assert!(matches!(
            parse_rate("-1mbit"),
            Err(UnitError::Negative { .. })
        ));
        assert_eq!(
            Rate::from_bits_per_sec(10_000_000).unwrap().to_string(),
            "10mbit"
        );
        assert_eq!(
            Rate::from_bits_per_sec(1_500).unwrap().to_string(),
            "1500bit"
        );
    }

    #[test]
    fn rate_arithmetic() {
        let r = Rate::from_bits_per_sec(10_000_000).unwrap();
        assert_eq!(r.nanos_for(1250), 1_000_000);
        assert_eq!(r.bytes_in(1_000_000_000), 1_250_000);
        let slow = Rate::from_bits_per_sec(3).unwrap();
        assert_eq!(slow.nanos_for(1), 2_666_666_667);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("256KiB"), Ok(262_144));
        assert_eq!(parse_size("1.5m"), Ok(1_572_864));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(matches!(
            parse_size("5furlong"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(parse_size("-1k"), Err(UnitError::Negative { .. })));
        assert_eq!(format_size(262_144), "256KiB");
        assert_eq!(format_size(1500), "1500");
    }

    #[test]
    fn losses() {
        assert_eq!(parse_loss("1%").unwrap().ppm(), 10_000);
        assert_eq!(parse_loss("0.25%").unwrap().ppm(), 2_500);
        assert_eq!(parse_loss("100%").unwrap().ppm(), 1_000_000);
        assert_eq!(parse_loss("0").unwrap().ppm(), 0);
        assert!(matches!(
            parse_loss("101%"),
            Err(UnitError::LossAbove100 { .. })
        ));
        assert!(matches!(
            parse_loss("5"),
            Err(UnitError::MissingUnit { .. })
        ));
        assert!(matches!(
            parse_loss("0.00001%"),
            Err(UnitError::TooPrecise { .. })
        ));
        assert_eq!(parse_loss("0.25%").unwrap().to_string(), "0.25%");
        assert_eq!(parse_loss("3%").unwrap().to_string(), "3%");
    }

    #[test]
    fn formatted_values_parse_back() {
        for d in [
            0u64,
            1,
            999,
            1_000,
            50_000_000,
            1_500_000_000,
            7_000_000_000,
        ] {
            let d = Duration::from_nanos(d);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        for b in [0u64, 1, 1023, 1024, 65_536, 3 << 20, 1 << 30] {
            assert_eq!(parse_size(&format_size(b)), Ok(b));
        }
    }
}
