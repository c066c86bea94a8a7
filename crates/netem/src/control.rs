//! The control protocol: one command per line, one reply line per command.
//!
//! ```text
//! set <up|down|both> key=value...   change parameters (only the keys named)
//! get                               show parameters
//! stats                             show counters
//! help                              list commands
//! ```
//!
//! Keys: `delay`, `jitter` (durations: `50ms`), `rate` (`10mbit`, `unlimited`), `queue`, `burst`
//! (sizes: `256KiB`), `loss` (`1%`), `reorder` (`on`/`off`). Example:
//! `set up delay=50ms jitter=5ms rate=10mbit queue=64k loss=1%`.
//!
//! Replies start with `ok` or `err`, followed by text on the same line:
//! `ok up: delay=50ms ...; down: delay=0ms ...`, `ok up.packets_in=12 ...`,
//! `err line 1: unknown key `dealy` (known: delay, jitter, ...)`.
//!
//! States: the protocol is stateless; every line stands alone, and a connection may send any
//! number of lines. A line longer than [`MAX_LINE`] bytes closes the connection after an `err`.
//! Versioning: new commands and keys may be added; existing ones keep their meaning, and unknown
//! ones are refused (never ignored), so a client can tell whether a server understands it.

use std::fmt;

use crate::handle::{Dir, LinkHandle};
use crate::link::{LinkParams, ParamsError};
use crate::units::{parse_duration, parse_loss, parse_rate, parse_size, Loss, Rate, UnitError};

/// Longest accepted command line, in bytes.
pub const MAX_LINE: usize = 4096;

const KEYS: &str = "delay, jitter, rate, queue, burst, loss, reorder";

/// What is wrong with a command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("empty command; try `help`")]
    Empty,
    #[error("command is {len} bytes, longer than the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("unknown command `{command}` (known: set, get, stats, help)")]
    UnknownCommand { command: String },
    #[error("`{command}` takes no arguments, found `{extra}`")]
    UnexpectedArgument {
        command: &'static str,
        extra: String,
    },
    #[error("`set` needs a direction: up, down or both")]
    MissingDirection,
    #[error("unknown direction `{dir}` (use up, down or both)")]
    UnknownDirection { dir: String },
    #[error("`set {dir}` needs at least one key=value (keys: {KEYS})")]
    NothingToSet { dir: String },
    #[error("`{word}` (word {index}) is not key=value")]
    NotAssignment { word: String, index: usize },
    #[error("unknown key `{key}` (known: {KEYS})")]
    UnknownKey { key: String },
    #[error("key `{key}` given twice")]
    DuplicateKey { key: String },
    #[error("bad value for `{key}`")]
    BadValue { key: String, source: UnitError },
    #[error("bad value for `reorder`: `{value}` (use on or off)")]
    BadSwitch { value: String },
    #[error("parameters rejected for direction {dir}")]
    Rejected { dir: Dir, source: ParamsError },
}

/// Which directions a `set` applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Up,
    Down,
    Both,
}

impl Target {
    fn dirs(self) -> &'static [Dir] {
        match self {
            Target::Up => &[Dir::Up],
            Target::Down => &[Dir::Down],
            Target::Both => &Dir::BOTH,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Up => "up",
            Target::Down => "down",
            Target::Both => "both",
        })
    }
}

/// A partial update of [`LinkParams`]: the keys a `set` named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamChanges {
    pub delay: Option<std::time::Duration>,
    pub jitter: Option<std::time::Duration>,
    pub rate: Option<Option<Rate>>,
    pub queue: Option<u64>,
    pub burst: Option<u64>,
    pub loss: Option<Loss>,
    pub reorder: Option<bool>,
}

impl ParamChanges {
    /// `base` with these changes applied.
    pub fn apply(&self, base: &LinkParams) -> LinkParams {
        LinkParams {
            delay: self.delay.unwrap_or(base.delay),
            jitter: self.jitter.unwrap_or(base.jitter),
            rate: self.rate.unwrap_or(base.rate),
            queue: self.queue.unwrap_or(base.queue),
            burst: self.burst.unwrap_or(base.burst),
            loss: self.loss.unwrap_or(base.loss),
            reorder: self.reorder.unwrap_or(base.reorder),
        }
    }

    fn is_empty(&self) -> bool {
        *self == ParamChanges::default()
    }
}

/// A parsed control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Set {
        target: Target,
        changes: ParamChanges,
    },
    Get,
    Stats,
    Help,
}

/// Parses one command line (without its newline).
pub fn parse_command(line: &str) -> Result<Command, ControlError> {
    if line.len() > MAX_LINE {
        return Err(ControlError::TooLong {
            len: line.len(),
            max: MAX_LINE,
        });
    }
    let mut words = line.split_ascii_whitespace();
    let Some(command) = words.next() else {
        return Err(ControlError::Empty);
    };
    let no_args = |command: &'static str,
                   mut rest: std::str::SplitAsciiWhitespace<'_>,
                   cmd: Command| match rest.next() {
        Some(extra) => Err(ControlError::UnexpectedArgument {
            command,
            extra: extra.to_owned(),
        }),
        None => Ok(cmd),
    };
    match command {
        "get" => no_args("get", words, Command::Get),
        "stats" => no_args("stats", words, Command::Stats),
        "help" => no_args("help", words, Command::Help),
        "set" => {
            let target = match words.next() {
                None => return Err(ControlError::MissingDirection),
                Some("up") => Target::Up,
                Some("down") => Target::Down,
                Some("both") => Target::Both,
                Some(other) => {
                    return Err(ControlError::UnknownDirection {
                        dir: other.to_owned(),
                    })
                }
            };
            let mut changes = ParamChanges::default();
            for (i, word) in words.enumerate() {
                let Some((key, value)) = word.split_once('=') else {
                    return Err(ControlError::NotAssignment {
                        word: word.to_owned(),
                        index: i + 3,
                    });
                };
                set_key(&mut changes, key, value)?;
            }
            if changes.is_empty() {
                return Err(ControlError::NothingToSet {
                    dir: target.to_string(),
                });
            }
            Ok(Command::Set { target, changes })
        }
        other => Err(ControlError::UnknownCommand {
            command: other.to_owned(),
        }),
    }
}

fn set_key(c: &mut ParamChanges, key: &str, value: &str) -> Result<(), ControlError> {
    fn put<T>(slot: &mut Option<T>, key: &str, v: T) -> Result<(), ControlError> {
        if slot.is_some() {
            return Err(ControlError::DuplicateKey {
                key: key.to_owned(),
            });
        }
        *slot = Some(v);
        Ok(())
    }
    let bad = |source| ControlError::BadValue {
        key: key.to_owned(),
        source,
    };
    match key {
        "delay" => put(&mut c.delay, key, parse_duration(value).map_err(bad)?),
        "jitter" => put(&mut c.jitter, key, parse_duration(value).map_err(bad)?),
        "rate" => put(&mut c.rate, key, parse_rate(value).map_err(bad)?),
        "queue" => put(&mut c.queue, key, parse_size(value).map_err(bad)?),
        "burst" => put(&mut c.burst, key, parse_size(value).map_err(bad)?),
        "loss" => put(&mut c.loss, key, parse_loss(value).map_err(bad)?),
        "reorder" => {
            let on = parse_switch(value).ok_or_else(|| ControlError::BadSwitch {
                value: value.to_owned(),
            })?;
            put(&mut c.reorder, key, on)
        }
        _ => Err(ControlError::UnknownKey {
            key: key.to_owned(),
        }),
    }
}

/// `on`/`off` and friends.
pub fn parse_switch(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Some(true),
        "off" | "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// Runs a command against a link and returns the reply text (after `ok `).
pub fn execute(command: &Command, handle: &LinkHandle) -> Result<String, ControlError> {
    match command {
        Command::Set { target, changes } => {
            let updated: Vec<(Dir, LinkParams)> =
                target.dirs().iter().map(|&d| (d, changes.apply(&handle.params(d)))).collect();
            for (dir, p) in &updated {
                p.validate().map_err(|source| ControlError::Rejected { dir: *dir, source })?;
            }
            for (dir, p) in updated {
                handle.set_params(dir, p).map_err(|source| ControlError::Rejected { dir, source })?;
            }
            Ok(params_line(handle))
        }
        Command::Get => Ok(params_line(handle)),
        Command::Stats => Ok(handle.stats_line()),
        Command::Help => Ok("commands: set <up|down|both> key=value... | get | stats | help; \
             keys: delay=50ms jitter=5ms rate=10mbit|unlimited queue=256KiB burst=0 loss=1% reorder=on|off"
            .to_owned()),
    }
}

fn params_line(handle: &LinkHandle) -> String {
    format!(
        "up: {}; down: {}",
        handle.params(Dir::Up),
        handle.params(Dir::Down)
    )
}

/// The full reply line (without newline) for one request line.
pub fn reply(line: &str, handle: &LinkHandle) -> String {
    match parse_command(line).and_then(|c| execute(&c, handle)) {
        Ok(text) => format!("ok {text}"),
        Err(e) => format!("err {}", error_chain(&e)),
    }
}

/// An error and its sources, joined with `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::time::Duration;

    #[test]
    fn parses_the_documented_example() {
        let c =
            parse_command("set up delay=50ms jitter=5ms rate=10mbit queue=64k loss=1%").unwrap();
        let Command::Set { target, changes } = c else {
            panic!("not a set")
        };
        assert_eq!(target, Target::Up);
        assert_eq!(changes.delay, Some(Duration::from_millis(50)));
        assert_eq!(changes.jitter, Some(Duration::from_millis(5)));
        assert_eq!(changes.rate.unwrap().unwrap().bits_per_sec(), 10_000_000);
        assert_eq!(changes.queue, Some(65_536));
        assert_eq!(changes.loss.unwrap().ppm(), 10_000);
        assert_eq!(changes.burst, None);
        assert_eq!(parse_command("  stats  "), Ok(Command::Stats));
        assert_eq!(parse_command("get"), Ok(Command::Get));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let msg = |l: &str| error_chain(&parse_command(l).unwrap_err());
        assert_eq!(msg(""), "empty command; try `help`");
        assert_eq!(
            msg("sett up"),
            "unknown command `sett` (known: set, get, stats, help)"
        );
        assert_eq!(msg("set"), "`set` needs a direction: up, down or both");
        assert_eq!(
            msg("set sideways delay=1ms"),
            "unknown direction `sideways` (use up, down or both)"
        );
        assert!(msg("set up").starts_with("`set up` needs at least one key=value"));
        assert_eq!(msg("set up delay"), "`delay` (word 3) is not key=value");
        assert!(msg("set up dealy=5ms").starts_with("unknown key `dealy`"));
        assert_eq!(
            msg("set up delay=-5ms"),
            "bad value for `delay`: duration `-5ms` must not be negative"
        );
        assert_eq!(
            msg("set both rate=0"),
            "bad value for `rate`: rate `0` is zero; omit the rate or write `unlimited` for no limit"
        );
        assert_eq!(msg("set up delay=1ms delay=2ms"), "key `delay` given twice");
        assert_eq!(msg("stats now"), "`stats` takes no arguments, found `now`");
        assert_eq!(
            msg("set up reorder=maybe"),
            "bad value for `reorder`: `maybe` (use on or off)"
        );
        assert!(matches!(
            parse_command(&"x".repeat(5000)),
            Err(ControlError::TooLong { .. })
        ));
    }

    #[test]
    fn set_changes_only_named_keys_and_validates_both_before_applying() {
        let h = LinkHandle::symmetric(
            LinkParams {
                delay: Duration::from_millis(7),
                ..LinkParams::default()
            },
            1,
        )
        .unwrap();
        let r = reply("set down rate=1mbit", &h);
        assert!(r.starts_with("ok up: delay=7ms"), "{r}");
        assert_eq!(h.params(Dir::Down).delay, Duration::from_millis(7));
        assert_eq!(h.params(Dir::Down).rate.unwrap().bits_per_sec(), 1_000_000);
        assert_eq!(h.params(Dir::Up).rate, None);
        let r = reply("set both queue=100", &h);
        assert_eq!(
            r,
            "err parameters rejected for direction up: queue of 100 bytes is below the minimum of 1500 bytes (one full-size packet)"
        );
        assert_eq!(h.params(Dir::Down).queue, crate::link::DEFAULT_QUEUE);
        assert!(reply("stats", &h).starts_with("ok up.packets_in=0 "));
        assert!(reply("help", &h).starts_with("ok commands:"));
    }

    /// The parser's fuzz target in miniature, run in every test pass: random and mutated lines
    /// never panic, and every accepted `set` survives a display/parse round trip.
    #[test]
    fn random_lines_never_panic() {
        let seeds = [
            "set up delay=50ms jitter=5ms rate=10mbit queue=64k loss=1%",
            "stats",
            "set both reorder=on burst=1k",
        ];
        let alphabet = b"setupdownbothdelayjitterratequeueburstlossreorder=0123456789.%-+ msbitkKiBgG\t\xc2\xb5";
        let mut rng = Rng::new(12345);
        for i in 0..20_000 {
            let mut line: Vec<u8> = seeds[i % seeds.len()].as_bytes().to_vec();
            for _ in 0..=rng.below(6) {
                let pos =
                    usize::try_from(rng.below(u64::try_from(line.len()).unwrap() + 1)).unwrap();
                let byte = alphabet
                    [usize::try_from(rng.below(u64::try_from(alphabet.len()).unwrap())).unwrap()];
                match rng.below(3) {
                    0 => line.insert(pos, byte),
                    1 if pos < line.len() => {
                        line.remove(pos);
                    }
                    _ if pos < line.len() => line[pos] = byte,
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&line);
            if let Ok(Command::Set { target, changes }) = parse_command(&text) {
                let p = changes.apply(&LinkParams::default());
                let again = parse_command(&format!("set {target} {p}")).unwrap();
                let Command::Set { changes: c2, .. } = again else {
                    panic!("round trip changed the command")
                };
                assert_eq!(c2.apply(&LinkParams::default()), p, "{text}");
            }
        }
    }
}
