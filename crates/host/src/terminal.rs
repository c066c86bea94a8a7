//! The serial console on the user's terminal, the way QEMU's `-nographic` does it: the terminal
//! goes into raw mode, every key goes to the guest's UART, and `Ctrl-A x` quits (`Ctrl-A Ctrl-A`
//! sends a literal Ctrl-A). Output is written to stdout as the guest emits it.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;

use doppel_machine::InputEvent;
use nix::sys::termios::{self, SetArg, Termios};

use crate::live::{InputSender, OutputSink};

/// The escape key of the console (Ctrl-A).
pub const ESCAPE: u8 = 0x01;

/// Restores the terminal's mode when dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Put stdin's terminal in raw mode (no echo, no line editing, no signals from keys). Does
    /// nothing when stdin is not a terminal.
    pub fn enable() -> Self {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Keep output post-processing so "\n" from the guest still returns the carriage.
        raw.output_flags |= termios::OutputFlags::OPOST | termios::OutputFlags::ONLCR;
        if termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Turns raw key bytes into UART input, handling the `Ctrl-A` escape.
#[derive(Debug, Default)]
pub struct EscapeFilter {
    escaped: bool,
}

/// What a chunk of terminal input means.
#[derive(Debug, PartialEq, Eq)]
pub enum Keys {
    /// Bytes for the guest.
    Guest(Vec<u8>),
    /// The user asked to quit; bytes before the escape are still for the guest.
    Quit(Vec<u8>),
}

impl EscapeFilter {
    pub fn feed(&mut self, input: &[u8]) -> Keys {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.escaped {
                self.escaped = false;
                match b {
                    b'x' | b'X' => return Keys::Quit(out),
                    ESCAPE => out.push(ESCAPE),
                    _ => {} // unknown escape: swallowed, like QEMU
                }
            } else if b == ESCAPE {
                self.escaped = true;
            } else {
                out.push(b);
            }
        }
        Keys::Guest(out)
    }
}

/// Start a thread that forwards stdin to the guest's UART until EOF or `Ctrl-A x`.
pub fn spawn_stdin_reader(input: InputSender) -> std::io::Result<std::thread::JoinHandle<()>> {
    let interactive = std::io::stdin().is_terminal();
    std::thread::Builder::new()
        .name("console-stdin".into())
        .spawn(move || {
            let mut filter = EscapeFilter::default();
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return, // EOF: the guest keeps running, just without input
                    Ok(n) => n,
                };
                let keys = if interactive {
                    filter.feed(&buf[..n])
                } else {
                    Keys::Guest(buf[..n].to_vec())
                };
                match keys {
                    Keys::Guest(bytes) => {
                        if !bytes.is_empty() && !input.send(InputEvent::UartRx(bytes)) {
                            return;
                        }
                    }
                    Keys::Quit(bytes) => {
                        if !bytes.is_empty() {
                            input.send(InputEvent::UartRx(bytes));
                        }
                        input.stop("console: Ctrl-A x pressed");
                        return;
                    }
                }
            }
        })
}

/// Console output to stdout; transmitted frames are counted and dropped (no network backend).
#[derive(Debug, Default)]
pub struct StdoutSink {
    pub frames_dropped: u64,
}

impl OutputSink for StdoutSink {
    fn console(&mut self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }

    fn net_tx(&mut self, _frame: &[u8]) {
        self.frames_dropped += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_a_x_quits_and_keeps_what_came_before() {
        let mut f = EscapeFilter::default();
        assert_eq!(f.feed(b"ls\r"), Keys::Guest(b"ls\r".to_vec()));
        assert_eq!(f.feed(b"ab\x01x"), Keys::Quit(b"ab".to_vec()));
    }

    #[test]
    fn escape_split_across_reads_and_literal_ctrl_a() {
        let mut f = EscapeFilter::default();
        assert_eq!(f.feed(b"a\x01"), Keys::Guest(b"a".to_vec()));
        assert_eq!(f.feed(b"\x01b"), Keys::Guest(b"\x01b".to_vec()));
        assert_eq!(f.feed(b"\x01"), Keys::Guest(vec![]));
        assert_eq!(f.feed(b"X"), Keys::Quit(vec![]));
    }
}
