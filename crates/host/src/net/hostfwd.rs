//! Host port forwards in QEMU's `hostfwd=` syntax: `[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`.
//!
//! `tcp:127.0.0.1:8080-:80` forwards the host's 127.0.0.1:8080 to port 80 of the guest. An empty
//! protocol means tcp, an empty host address means every host address (0.0.0.0), an empty guest
//! address means the guest's own address (10.0.2.15 on the default network). The protocol field
//! may be left out entirely (`127.0.0.1:8080-:80`). IPv4 only, like the network itself.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A transport protocol of a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// One forward from a host address and port to a guest port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFwd {
    pub protocol: Protocol,
    pub host_addr: Ipv4Addr,
    pub host_port: u16,
    /// `None`: the guest's address on its network.
    pub guest_addr: Option<Ipv4Addr>,
    pub guest_port: u16,
}

/// A forward rule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad port forward `{rule}`: {reason} (expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, e.g. tcp:127.0.0.1:8080-:80)")]
pub struct HostFwdError {
    pub rule: String,
    pub reason: String,
}

impl FromStr for HostFwd {
    type Err = HostFwdError;

    fn from_str(rule: &str) -> Result<Self, HostFwdError> {
        let fail = |reason: String| HostFwdError {
            rule: rule.to_string(),
            reason,
        };
        let (host, guest) = rule
            .split_once('-')
            .ok_or_else(|| fail("no `-` between the host and the guest side".into()))?;
        let fields: Vec<&str> = host.split(':').collect();
        let (protocol, host_addr, host_port) = match fields.as_slice() {
            [proto, addr, port] => (*proto, *addr, *port),
            [addr, port] => ("", *addr, *port),
            _ => {
                return Err(fail(format!(
                    "host side `{host}` is not [PROTO:][ADDR]:PORT"
                )))
            }
        };
        let protocol = match protocol {
            "" | "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => return Err(fail(format!("unknown protocol `{other}` (tcp or udp)"))),
        };
        let (guest_addr, guest_port) = guest
            .split_once(':')
            .ok_or_else(|| fail(format!("guest side `{guest}` is not [ADDR]:PORT")))?;
        let addr = |s: &str, side: &str| -> Result<Option<Ipv4Addr>, HostFwdError> {
            if s.is_empty() {
                return Ok(None);
            }
            s.parse()
                .map(Some)
                .map_err(|_| fail(format!("{side} address `{s}` is not an IPv4 address")))
        };
        let port = |s: &str, side: &str| -> Result<u16, HostFwdError> {
            match s.parse::<u16>() {
                Ok(p) if p != 0 => Ok(p),
                _ => Err(fail(format!(
                    "{side} port `{s}` is not a port number (1-65535)"
                ))),
            }
        };
        Ok(HostFwd {
            protocol,
            host_addr: addr(host_addr, "host")?.unwrap_or(Ipv4Addr::UNSPECIFIED),
            host_port: port(host_port, "host")?,
            guest_addr: addr(guest_addr, "guest")?,
            guest_port: port(guest_port, "guest")?,
        })
    }
}

impl fmt::Display for HostFwd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{proto}:{}:{}-", self.host_addr, self.host_port)?;
        if let Some(g) = self.guest_addr {
            write!(f, "{g}")?;
        }
        write!(f, ":{}", self.guest_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(s: &str) -> HostFwd {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn qemu_forms_parse() {
        assert_eq!(
            fwd("tcp:127.0.0.1:8080-:80"),
            HostFwd {
                protocol: Protocol::Tcp,
                host_addr: Ipv4Addr::LOCALHOST,
                host_port: 8080,
                guest_addr: None,
                guest_port: 80
            }
        );
        let u = fwd("udp::5353-10.0.2.15:53");
        assert_eq!(
            (u.protocol, u.host_addr, u.guest_addr),
            (
                Protocol::Udp,
                Ipv4Addr::UNSPECIFIED,
                Some(Ipv4Addr::new(10, 0, 2, 15))
            )
        );
        assert_eq!(fwd(":127.0.0.1:2222-:22").protocol, Protocol::Tcp);
        assert_eq!(fwd("127.0.0.1:2222-:22").host_port, 2222);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp:127.0.0.1:8080-:80",
            "udp:0.0.0.0:5353-10.0.2.15:53",
            "tcp:10.1.2.3:1-:65535",
        ] {
            assert_eq!(fwd(s).to_string(), s);
            assert_eq!(fwd(&fwd(s).to_string()), fwd(s));
        }
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let err = |s: &str| s.parse::<HostFwd>().unwrap_err().to_string();
        assert!(err("tcp:127.0.0.1:8080").contains("no `-`"));
        assert!(err("sctp:127.0.0.1:8080-:80").contains("unknown protocol `sctp`"));
        assert!(err("tcp:127.0.0.1:80800-:80").contains("host port `80800`"));
        assert!(err("tcp:127.0.0.1:0-:80").contains("host port `0`"));
        assert!(err("tcp:localhost:8080-:80").contains("host address `localhost`"));
        assert!(err("tcp:127.0.0.1:8080-80").contains("guest side `80`"));
        assert!(err("tcp:127.0.0.1:8080-:x").contains("guest port `x`"));
        assert!(err("a:b:c:d-:1").contains("host side"));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // Deterministic stand-in for a fuzzer: every string over a small alphabet up to length 7.
        let alphabet = [b't', b'u', b':', b'-', b'1', b'.', b'0', b'9'];
        let mut parsed = 0;
        for len in 0..=6u32 {
            for n in 0..(alphabet.len() as u64).pow(len) {
                let mut k = n;
                let s: String = (0..len)
                    .map(|_| {
                        let c = alphabet[usize::try_from(k % 8).unwrap_or(0)];
                        k /= 8;
                        char::from(c)
                    })
                    .collect();
                if let Ok(f) = s.parse::<HostFwd>() {
                    parsed += 1;
                    assert_eq!(f.to_string().parse::<HostFwd>().unwrap(), f, "{s}");
                }
            }
        }
        assert!(parsed > 0);
    }
}
