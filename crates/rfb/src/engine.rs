//! The per-connection RFB protocol engine, sans-IO: bytes in ([`Engine::receive`]), events out
//! ([`Engine::poll_event`]) and bytes out ([`Engine::take_output`]). It owns the handshake and
//! parses client messages; what to draw is the [`crate::session`]'s business.
//!
//! # State machine
//!
//! ```text
//!  new ──▶ Version ──(client "RFB 003.xxx\n")──▶ Security ─┬─(None)──────────────▶ ClientInit
//!   (server sends "RFB 003.008\n")                         └─(VNC auth)▶ AuthResponse ─▶ ClientInit
//!  ClientInit ──(shared flag; server sends ServerInit)──▶ Normal ──(any error)──▶ Closed
//!
//!  Security ─(VeNCrypt)▶ VeNCryptVersion ─▶ VeNCryptSubtype ─▶ StartTls ─(adapter: TLS up)─┐
//!      ┌──────────────────────────────────────────────────────────────────────────────────┘
//!      └─▶ X509None: ClientInit · X509Vnc: AuthResponse · X509Plain: PlainAuth ─▶ ClientInit
//! ```
//!
//! * **Version.** The server announces 3.8. The client answers with the version it will speak;
//!   3.8 and later 3.x (Apple's 3.889) mean 3.8, 3.7 means 3.7, and every other 3.x means 3.3
//!   (RFC 6143 §7.1.1). Another major version is refused.
//! * **Security.** 3.7 and 3.8: the server lists its types (one byte each) and the client picks
//!   one; a type not offered closes the connection (3.8 first sends a reason). 3.3: the server
//!   decides and sends the type as a u32. If VNC authentication is configured only it is offered,
//!   otherwise only None.
//! * **SecurityResult** (u32 0 = OK, 1 = failed) follows VNC authentication and VeNCrypt in every
//!   version and None only in 3.8. On failure 3.8 adds a reason string; 3.3 and 3.7 just close.
//! * **VeNCrypt** (type 19, 3.7 and 3.8 only; a 3.3 client is refused since 3.3 has no way to
//!   offer it): the server sends its VeNCrypt version 0.2, the client answers with 0.2 (anything
//!   else gets status 0xFF and the connection closes), the server sends status 0 and its subtypes
//!   (X509None without a password; X509Vnc and X509Plain with one), the client picks one (u32)
//!   and the server accepts it with a 1 byte. Then the engine stops in *StartTls*: the adapter
//!   sends the pending output, runs the TLS handshake on the socket (the engine never sees TLS
//!   records) and calls [`Engine::tls_established`]; everything after runs inside TLS. A client
//!   that sends bytes before the TLS handshake is refused ([`Engine::tls_pending`]). X509Plain:
//!   u32 username length, u32 password length, both strings; the username is not checked, the
//!   whole password is (not only 8 bytes as in VNC authentication).
//! * **ClientInit/ServerInit**, then **Normal**: client messages in any order. Unknown message
//!   types cannot be skipped (their length is unknown), so they close the connection with the
//!   reason logged; so does any malformed message.
//!
//! The engine answers some messages itself: it replies to a client Fence request with the flags
//! it supports, announces Fence and ContinuousUpdates support the first time the client lists
//! those pseudo-encodings (a server Fence request, an EndOfContinuousUpdates), and sends the
//! BGR233 colour map when a client asks for a colour-map pixel format.

use std::collections::VecDeque;

use crate::auth;
use crate::encode::TightOptions;
use crate::pixel::Translator;
use crate::wire::{
    emit_end_of_continuous_updates, emit_fence, emit_set_colour_map_entries, fence_flags, ClientMessage,
    Encoding, PixelFormat, ProtocolVersion, Rect, SecurityType, ServerInit, WireError,
};

/// How the server authenticates viewers.
#[derive(Clone, PartialEq, Eq)]
pub enum Security {
    None,
    /// VNC authentication; only the first 8 bytes of the password count.
    VncAuth { password: Vec<u8> },
    /// VeNCrypt over TLS with an X.509 certificate: X509None without a password; X509Vnc and
    /// X509Plain with one. The TLS session itself is the adapter's.
    Tls { password: Option<Vec<u8>> },
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Security::None => f.write_str("None"),
            Security::VncAuth { .. } => f.write_str("VncAuth { password: <hidden> }"),
            Security::Tls { password: None } => f.write_str("Tls { password: None }"),
            Security::Tls { password: Some(_) } => f.write_str("Tls { password: <hidden> }"),
        }
    }
}

/// What a connection needs to know from the server.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub security: Security,
    pub name: Vec<u8>,
    pub width: u16,
    pub height: u16,
}

/// Something the client did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake is done; the client wants to share the desktop (or not).
    Initialised { shared: bool },
    Key { down: bool, keysym: u32 },
    /// QEMU extended key event: keysym and XT scancode (0xE0-prefixed codes have bit 7 set).
    ExtKey { down: bool, keysym: u32, scancode: u32 },
    Pointer { buttons: u8, x: u16, y: u16 },
    CutText(Vec<u8>),
    UpdateRequest { incremental: bool, rect: Rect },
    ContinuousUpdates { enable: bool, rect: Rect },
    /// Pixel format or encodings changed; the client's next update should be a full one.
    FormatChanged,
    /// The client answered one of our fences.
    FenceResponse { flags: u32, payload: Vec<u8> },
    DesktopSizeRequest { width: u16, height: u16 },
}

/// Why a connection ends.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("malformed {what} from the client")]
    Wire {
        what: &'static str,
        #[source]
        source: WireError,
    },
    #[error("client speaks unsupported protocol version {major}.{minor}")]
    UnsupportedVersion { major: u16, minor: u16 },
    #[error("client chose security type {chosen}, which was not offered")]
    SecurityNotOffered { chosen: u8 },
    #[error("VNC authentication failed")]
    AuthFailed,
    #[error("client speaks VeNCrypt {major}.{minor}; only 0.2 is supported")]
    VeNCryptVersion { major: u8, minor: u8 },
    #[error("client chose VeNCrypt subtype {chosen}, which was not offered")]
    SubtypeNotOffered { chosen: u32 },
    #[error("client sent {len} bytes before the TLS handshake")]
    EarlyData { len: usize },
    #[error("TLS is required, and protocol 3.3 cannot negotiate it")]
    TlsNeeds37,
    #[error("credentials of {len} bytes are too long (at most {max})")]
    CredentialsTooLong { len: u64, max: usize },
    #[error("client asked for pixel format it cannot have")]
    BadPixelFormat {
        #[source]
        source: WireError,
    },
    #[error("connection already closed")]
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Version,
    Security,
    AuthResponse,
    VeNCryptVersion,
    VeNCryptSubtype,
    StartTls,
    PlainAuth,
    ClientInit,
    Normal,
    Closed,
}

/// What the client told us about how it wants updates.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub pixel_format: PixelFormat,
    pub translator: Translator,
    /// Everything from the last SetEncodings, in the client's order of preference.
    pub encodings: Vec<Encoding>,
    /// The first real encoding in that list we can produce (Raw if none).
    pub preferred: Encoding,
    pub tight: TightOptions,
}

impl ClientSettings {
    fn new() -> ClientSettings {
        ClientSettings {
            pixel_format: PixelFormat::XRGB8888,
            translator: Translator::new(&PixelFormat::XRGB8888),
            encodings: Vec::new(),
            preferred: Encoding::RAW,
            tight: TightOptions::default(),
        }
    }

    pub fn supports(&self, e: Encoding) -> bool {
        self.encodings.contains(&e)
    }
}

/// One client connection's protocol state.
#[derive(Debug)]
pub struct Engine {
    state: State,
    version: ProtocolVersion,
    config: EngineConfig,
    challenge: [u8; 16],
    inbuf: Vec<u8>,
    out: Vec<u8>,
    events: VecDeque<Event>,
    settings: ClientSettings,
    fence_announced: bool,
    cu_announced: bool,
    /// The VeNCrypt subtype the client chose.
    subtype: u32,
}

const SERVER_VERSION: ProtocolVersion = ProtocolVersion::V3_8;
/// Bytes of unparsed input we hold at most (a full ClientCutText plus slack).
const MAX_INBUF: usize = crate::wire::MAX_CUT_TEXT + 4096;

impl Engine {
    /// A new connection. `challenge` is the VNC authentication challenge: 16 random bytes the
    /// caller draws (the engine has no randomness of its own). The server's version is queued.
    pub fn new(config: EngineConfig, challenge: [u8; 16]) -> Engine {
        let mut out = Vec::new();
        SERVER_VERSION.emit(&mut out);
        Engine {
            state: State::Version,
            version: SERVER_VERSION,
            config,
            challenge,
            inbuf: Vec::new(),
            out,
            events: VecDeque::new(),
            settings: ClientSettings::new(),
            fence_announced: false,
            cu_announced: false,
            subtype: 0,
        }
    }

    /// Whether the adapter must now start TLS on the connection (after sending
    /// [`Engine::take_output`]) and then call [`Engine::tls_established`].
    pub fn tls_pending(&self) -> bool {
        self.state == State::StartTls
    }

    /// The TLS session is up: continue with the chosen VeNCrypt subtype. Bytes the client sent
    /// before the handshake (which VeNCrypt forbids) make this fail.
    pub fn tls_established(&mut self) -> Result<(), EngineError> {
        if self.state != State::StartTls {
            return Err(EngineError::Closed);
        }
        if !self.inbuf.is_empty() {
            let len = self.inbuf.len();
            self.state = State::Closed;
            self.inbuf.clear();
            return Err(EngineError::EarlyData { len });
        }
        match self.subtype {
            vencrypt::X509_VNC => {
                self.out.extend_from_slice(&self.challenge);
                self.state = State::AuthResponse;
            }
            vencrypt::X509_PLAIN => self.state = State::PlainAuth,
            _ => {
                self.out.extend_from_slice(&0u32.to_be_bytes());
                self.state = State::ClientInit;
            }
        }
        Ok(())
    }

    /// The version in use (3.8 until the client has answered).
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    pub fn is_normal(&self) -> bool {
        self.state == State::Normal
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The framebuffer size ServerInit will announce (call before the handshake ends).
    pub fn set_size(&mut self, width: u16, height: u16) {
        self.config.width = width;
        self.config.height = height;
    }

    /// Bytes to send to the client, in order.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Appends server-to-client bytes produced elsewhere (updates), keeping the order.
    pub fn push_output(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Feeds bytes from the client. On error the connection must be closed after sending what
    /// [`Engine::take_output`] holds (a failure reason, where the protocol has one).
    pub fn receive(&mut self, data: &[u8]) -> Result<(), EngineError> {
        if self.state == State::Closed {
            return Err(EngineError::Closed);
        }
        self.inbuf.extend_from_slice(data);
        let r = self.process();
        if r.is_err() {
            self.state = State::Closed;
            self.inbuf.clear();
        } else if self.inbuf.len() > MAX_INBUF {
            // Cannot happen with the parser's own limits; a guard against unbounded growth.
            self.state = State::Closed;
            return Err(EngineError::Wire {
                what: "message",
                source: WireError::TooLong { what: "pending input", len: self.inbuf.len(), max: MAX_INBUF },
            });
        }
        r
    }

    fn process(&mut self) -> Result<(), EngineError> {
        let buf = std::mem::take(&mut self.inbuf);
        let mut at = 0;
        let result = loop {
            match self.step(&buf[at..]) {
                Ok(Some(used)) => at += used,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.inbuf = buf;
        self.inbuf.drain(..at.min(self.inbuf.len()));
        result
    }

    /// Handles one unit of input; `Ok(None)` when more bytes are needed.
    fn step(&mut self, buf: &[u8]) -> Result<Option<usize>, EngineError> {
        let wire = |what| move |source| EngineError::Wire { what, source };
        match self.state {
            State::Closed => Err(EngineError::Closed),
            State::Version => {
                let v = match ProtocolVersion::parse(buf) {
                    Err(WireError::Truncated { .. }) => return Ok(None),
                    r => r.map_err(wire("ProtocolVersion"))?,
                };
                let Some(v) = v.negotiate() else {
                    return Err(EngineError::UnsupportedVersion { major: v.major, minor: v.minor });
                };
                self.version = v;
                let ty = self.security_type();
                if v == ProtocolVersion::V3_3 && ty == vencrypt::SECURITY_TYPE {
                    // 3.3: type 0 (failure) and a reason.
                    self.out.extend_from_slice(&0u32.to_be_bytes());
                    reason(&mut self.out, "this server requires TLS (VeNCrypt), which needs RFB 3.7 or later");
                    return Err(EngineError::TlsNeeds37);
                }
                if v == ProtocolVersion::V3_3 {
                    self.out.extend_from_slice(&u32::from(ty.0).to_be_bytes());
                    self.after_security_choice(ty);
                } else {
                    self.out.extend_from_slice(&[1, ty.0]);
                    self.state = State::Security;
                }
                Ok(Some(ProtocolVersion::LEN))
            }
            State::Security => {
                let Some(&chosen) = buf.first() else { return Ok(None) };
                let ty = self.security_type();
                if chosen != ty.0 {
                    if self.version == ProtocolVersion::V3_8 {
                        self.out.extend_from_slice(&1u32.to_be_bytes());
                        reason(&mut self.out, "security type not offered");
                    }
                    return Err(EngineError::SecurityNotOffered { chosen });
                }
                self.after_security_choice(ty);
                Ok(Some(1))
            }
            State::AuthResponse => {
                if buf.len() < 16 {
                    return Ok(None);
                }
                let (Security::VncAuth { password } | Security::Tls { password: Some(password) }) = &self.config.security
                else {
                    return Err(EngineError::Closed);
                };
                let want = auth::vnc_auth_response(password, &self.challenge);
                if !auth::constant_time_eq(&want, &buf[..16]) {
                    self.out.extend_from_slice(&1u32.to_be_bytes());
                    if self.version == ProtocolVersion::V3_8 {
                        reason(&mut self.out, "authentication failed");
                    }
                    return Err(EngineError::AuthFailed);
                }
                self.out.extend_from_slice(&0u32.to_be_bytes());
                self.state = State::ClientInit;
                Ok(Some(16))
            }
            State::VeNCryptVersion => {
                let [major, minor, ..] = *buf else { return Ok(None) };
                if (major, minor) != (0, 2) {
                    self.out.push(0xff);
                    return Err(EngineError::VeNCryptVersion { major, minor });
                }
                self.out.push(0);
                let subtypes = self.subtypes();
                self.out.push(u8::try_from(subtypes.len()).unwrap_or(0));
                for t in subtypes {
                    self.out.extend_from_slice(&t.to_be_bytes());
                }
                self.state = State::VeNCryptSubtype;
                Ok(Some(2))
            }
            State::VeNCryptSubtype => {
                let [a, b, c, d, ..] = *buf else { return Ok(None) };
                let chosen = u32::from_be_bytes([a, b, c, d]);
                if !self.subtypes().contains(&chosen) {
                    self.out.push(0);
                    return Err(EngineError::SubtypeNotOffered { chosen });
                }
                self.out.push(1);
                self.subtype = chosen;
                self.state = State::StartTls;
                Ok(Some(4))
            }
            // Waits for the adapter; bytes stay buffered (tls_established refuses them).
            State::StartTls => Ok(None),
            State::PlainAuth => {
                let [a, b, c, d, e, f, g, h, ..] = *buf else { return Ok(None) };
                let ulen = u32::from_be_bytes([a, b, c, d]);
                let plen = u32::from_be_bytes([e, f, g, h]);
                let total = u64::from(ulen) + u64::from(plen);
                if total > vencrypt::MAX_CREDENTIALS as u64 {
                    return Err(EngineError::CredentialsTooLong { len: total, max: vencrypt::MAX_CREDENTIALS });
                }
                let (ulen, plen) = (ulen as usize, plen as usize);
                if buf.len() < 8 + ulen + plen {
                    return Ok(None);
                }
                let given = &buf[8 + ulen..8 + ulen + plen];
                let Security::Tls { password: Some(password) } = &self.config.security else {
                    return Err(EngineError::Closed);
                };
                if !(given.len() == password.len() && auth::constant_time_eq(given, password)) {
                    self.out.extend_from_slice(&1u32.to_be_bytes());
                    if self.version == ProtocolVersion::V3_8 {
                        reason(&mut self.out, "authentication failed");
                    }
                    return Err(EngineError::AuthFailed);
                }
                self.out.extend_from_slice(&0u32.to_be_bytes());
                self.state = State::ClientInit;
                Ok(Some(8 + ulen + plen))
            }
            State::ClientInit => {
                let Some(&shared) = buf.first() else { return Ok(None) };
                ServerInit {
                    width: self.config.width,
                    height: self.config.height,
                    pixel_format: PixelFormat::XRGB8888,
                    name: self.config.name.clone(),
                }
                .emit(&mut self.out);
                self.state = State::Normal;
                self.events.push_back(Event::Initialised { shared: shared != 0 });
                Ok(Some(1))
            }
            State::Normal => {
                let (msg, used) = match ClientMessage::parse(buf) {
                    Err(WireError::Truncated { .. }) => return Ok(None),
                    r => r.map_err(wire("client message"))?,
                };
                self.message(msg)?;
                Ok(Some(used))
            }
        }
    }

    fn security_type(&self) -> SecurityType {
        match self.config.security {
            Security::None => SecurityType::NONE,
            Security::VncAuth { .. } => SecurityType::VNC_AUTH,
            Security::Tls { .. } => vencrypt::SECURITY_TYPE,
        }
    }

    fn subtypes(&self) -> &'static [u32] {
        match self.config.security {
            Security::Tls { password: Some(_) } => &[vencrypt::X509_VNC, vencrypt::X509_PLAIN],
            _ => &[vencrypt::X509_NONE],
        }
    }

    fn after_security_choice(&mut self, ty: SecurityType) {
        if ty == SecurityType::VNC_AUTH {
            self.out.extend_from_slice(&self.challenge);
            self.state = State::AuthResponse;
        } else if ty == vencrypt::SECURITY_TYPE {
            self.out.extend_from_slice(&[0, 2]);
            self.state = State::VeNCryptVersion;
        } else {
            if self.version == ProtocolVersion::V3_8 {
                self.out.extend_from_slice(&0u32.to_be_bytes());
            }
            self.state = State::ClientInit;
        }
    }

    fn message(&mut self, msg: ClientMessage) -> Result<(), EngineError> {
        match msg {
            ClientMessage::SetPixelFormat(pf) => {
                pf.validate().map_err(|source| EngineError::BadPixelFormat { source })?;
                self.settings.pixel_format = pf;
                self.settings.translator = Translator::new(&pf);
                if !pf.true_colour {
                    emit_set_colour_map_entries(&mut self.out, 0, &Translator::bgr233_palette());
                }
                self.events.push_back(Event::FormatChanged);
            }
            ClientMessage::SetEncodings(encs) => {
                let s = &mut self.settings;
                s.preferred = encs
                    .iter()
                    .copied()
                    .find(|e| crate::encode::Encoders::can_encode(*e))
                    .unwrap_or(Encoding::RAW);
                let mut tight = TightOptions::default();
                for e in &encs {
                    match e.0 {
                        q @ -32..=-23 => tight.quality_level = Some(u8::try_from(q + 32).unwrap_or(0)),
                        c @ -256..=-247 => tight.compress_level = u8::try_from(c + 256).unwrap_or(2),
                        f @ -512..=-412 => tight.fine_quality = Some(u8::try_from(f + 512).unwrap_or(100)),
                        -768 => tight.subsampling = Some(crate::encode::Subsampling::None),
                        -767 | -764 | -763 => tight.subsampling = Some(crate::encode::Subsampling::X4),
                        -766 => tight.subsampling = Some(crate::encode::Subsampling::X2),
                        _ => {}
                    }
                }
                s.tight = tight;
                s.encodings = encs;
                if s.supports(Encoding::FENCE) && !self.fence_announced {
                    self.fence_announced = true;
                    emit_fence(
                        &mut self.out,
                        fence_flags::REQUEST | fence_flags::BLOCK_BEFORE,
                        b"doppel-hello",
                    );
                }
                if self.settings.supports(Encoding::CONTINUOUS_UPDATES) && !self.cu_announced {
                    self.cu_announced = true;
                    emit_end_of_continuous_updates(&mut self.out);
                }
                self.events.push_back(Event::FormatChanged);
            }
            ClientMessage::FramebufferUpdateRequest { incremental, rect } => {
                self.events.push_back(Event::UpdateRequest { incremental, rect });
            }
            ClientMessage::KeyEvent { down, keysym } => self.events.push_back(Event::Key { down, keysym }),
            ClientMessage::PointerEvent { buttons, x, y } => self.events.push_back(Event::Pointer { buttons, x, y }),
            ClientMessage::ClientCutText(t) => self.events.push_back(Event::CutText(t)),
            ClientMessage::EnableContinuousUpdates { enable, rect } => {
                if !enable {
                    emit_end_of_continuous_updates(&mut self.out);
                }
                self.events.push_back(Event::ContinuousUpdates { enable, rect });
            }
            ClientMessage::Fence { flags, payload } => {
                if flags & fence_flags::REQUEST != 0 {
                    // Our output is ordered, so everything before is already "processed".
                    emit_fence(&mut self.out, flags & fence_flags::SUPPORTED, &payload);
                } else {
                    self.events.push_back(Event::FenceResponse { flags, payload });
                }
            }
            ClientMessage::SetDesktopSize { width, height, .. } => {
                self.events.push_back(Event::DesktopSizeRequest { width, height });
            }
            ClientMessage::QemuExtKey { down, keysym, scancode } => {
                self.events.push_back(Event::ExtKey { down, keysym, scancode });
            }
        }
        Ok(())
    }
}

/// VeNCrypt numbers (rfbproto §7.2.19).
pub mod vencrypt {
    use crate::wire::SecurityType;
    pub const SECURITY_TYPE: SecurityType = SecurityType(19);
    pub const X509_NONE: u32 = 260;
    pub const X509_VNC: u32 = 261;
    pub const X509_PLAIN: u32 = 262;
    /// Username plus password bytes accepted by X509Plain.
    pub const MAX_CREDENTIALS: usize = 4096;
}

fn reason(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&u32::try_from(text.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(security: Security) -> EngineConfig {
        EngineConfig { security, name: b"test".to_vec(), width: 64, height: 48 }
    }

    fn handshake(version: &[u8; 12], security: Security, password: &[u8]) -> (Engine, Vec<u8>) {
        let challenge = [9u8; 16];
        let mut e = Engine::new(config(security.clone()), challenge);
        assert_eq!(e.take_output(), b"RFB 003.008\n");
        e.receive(version).unwrap();
        let mut seen = e.take_output();
        let vnc = matches!(security, Security::VncAuth { .. });
        let v = ProtocolVersion::parse(version).unwrap().negotiate().unwrap();
        if v != ProtocolVersion::V3_3 {
            assert_eq!(seen, [1, if vnc { 2 } else { 1 }]);
            e.receive(&[if vnc { 2 } else { 1 }]).unwrap();
            seen = e.take_output();
        } else {
            assert_eq!(seen[..4], [0, 0, 0, if vnc { 2 } else { 1 }]);
            seen.drain(..4);
        }
        if vnc {
            assert_eq!(seen[..16], challenge);
            e.receive(&auth::vnc_auth_response(password, &challenge)).unwrap();
            seen = e.take_output();
            assert_eq!(seen, [0, 0, 0, 0]);
        } else if v == ProtocolVersion::V3_8 {
            assert_eq!(seen, [0, 0, 0, 0]);
        } else {
            assert!(seen.is_empty());
        }
        e.receive(&[1]).unwrap();
        let init = e.take_output();
        let (si, _) = ServerInit::parse(&init).unwrap();
        assert_eq!((si.width, si.height, si.name.as_slice()), (64, 48, &b"test"[..]));
        assert_eq!(e.poll_event(), Some(Event::Initialised { shared: true }));
        (e, init)
    }

    #[test]
    fn every_version_and_security_type_completes() {
        for v in [b"RFB 003.003\n", b"RFB 003.007\n", b"RFB 003.008\n", b"RFB 003.889\n", b"RFB 003.005\n"] {
            handshake(v, Security::None, b"");
            handshake(v, Security::VncAuth { password: b"secret".to_vec() }, b"secret");
        }
    }

    #[test]
    fn wrong_password_fails_with_reason_in_3_8_only() {
        for (v, with_reason) in [(b"RFB 003.008\n", true), (b"RFB 003.007\n", false), (b"RFB 003.003\n", false)] {
            let mut e = Engine::new(config(Security::VncAuth { password: b"right".to_vec() }), [3; 16]);
            e.receive(v).unwrap();
            if v != b"RFB 003.003\n" {
                e.receive(&[2]).unwrap();
            }
            e.take_output();
            let err = e.receive(&auth::vnc_auth_response(b"wrong", &[3; 16])).unwrap_err();
            assert!(matches!(err, EngineError::AuthFailed));
            let out = e.take_output();
            assert_eq!(out[..4], [0, 0, 0, 1]);
            assert_eq!(out.len() > 4, with_reason);
            assert!(matches!(e.receive(&[0]), Err(EngineError::Closed)));
        }
    }

    /// Runs VeNCrypt up to the TLS switch; returns the offered subtypes.
    fn vencrypt_to_tls(e: &mut Engine, version: &[u8; 12], pick: u32) -> Vec<u32> {
        e.take_output();
        e.receive(version).unwrap();
        assert_eq!(e.take_output(), [1, 19]);
        e.receive(&[19]).unwrap();
        assert_eq!(e.take_output(), [0, 2]);
        e.receive(&[0, 2]).unwrap();
        let out = e.take_output();
        assert_eq!(out[0], 0, "status ok");
        let subtypes: Vec<u32> = out[2..].chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(subtypes.len(), usize::from(out[1]));
        e.receive(&pick.to_be_bytes()).unwrap();
        assert_eq!(e.take_output(), [1], "subtype accepted");
        assert!(e.tls_pending());
        e.tls_established().unwrap();
        assert!(!e.tls_pending());
        subtypes
    }

    #[test]
    fn vencrypt_x509_none_vnc_and_plain() {
        for v in [b"RFB 003.007\n", b"RFB 003.008\n"] {
            let mut e = Engine::new(config(Security::Tls { password: None }), [4; 16]);
            assert_eq!(vencrypt_to_tls(&mut e, v, vencrypt::X509_NONE), [vencrypt::X509_NONE]);
            assert_eq!(e.take_output(), [0, 0, 0, 0], "SecurityResult in every version");
            e.receive(&[1]).unwrap();
            assert!(e.is_normal());

            let pw = Security::Tls { password: Some(b"sesame".to_vec()) };
            let mut e = Engine::new(config(pw.clone()), [4; 16]);
            assert_eq!(vencrypt_to_tls(&mut e, v, vencrypt::X509_VNC), [vencrypt::X509_VNC, vencrypt::X509_PLAIN]);
            assert_eq!(e.take_output(), [4; 16], "challenge inside TLS");
            e.receive(&auth::vnc_auth_response(b"sesame", &[4; 16])).unwrap();
            assert_eq!(e.take_output(), [0, 0, 0, 0]);
            e.receive(&[1]).unwrap();
            assert!(e.is_normal());

            for (password, ok) in [(&b"sesame"[..], true), (b"sesam", false), (b"sesame!", false)] {
                let mut e = Engine::new(config(pw.clone()), [4; 16]);
                vencrypt_to_tls(&mut e, v, vencrypt::X509_PLAIN);
                let mut msg = Vec::new();
                msg.extend_from_slice(&4u32.to_be_bytes());
                msg.extend_from_slice(&u32::try_from(password.len()).unwrap().to_be_bytes());
                msg.extend_from_slice(b"user");
                msg.extend_from_slice(password);
                // Split: the engine waits for the whole message.
                e.receive(&msg[..9]).unwrap();
                let r = e.receive(&msg[9..]);
                assert_eq!(r.is_ok(), ok, "{password:?}");
                assert_eq!(e.take_output()[..4], [0, 0, 0, u8::from(!ok)]);
            }
        }
    }

    #[test]
    fn vencrypt_refusals() {
        let tls = || Engine::new(config(Security::Tls { password: None }), [0; 16]);
        let mut e = tls();
        assert!(matches!(e.receive(b"RFB 003.003\n"), Err(EngineError::TlsNeeds37)));
        assert_eq!(e.take_output()[12..16], [0, 0, 0, 0], "3.3 failure type with a reason");
        let mut e = tls();
        e.receive(b"RFB 003.008\n").unwrap();
        e.receive(&[19]).unwrap();
        assert!(matches!(e.receive(&[0, 1]), Err(EngineError::VeNCryptVersion { major: 0, minor: 1 })));
        let mut e = tls();
        e.receive(b"RFB 003.008\n").unwrap();
        e.receive(&[19, 0, 2]).unwrap();
        assert!(matches!(e.receive(&261u32.to_be_bytes()), Err(EngineError::SubtypeNotOffered { chosen: 261 })));
        let mut e = tls();
        e.receive(b"RFB 003.008\n").unwrap();
        e.receive(&[19, 0, 2]).unwrap();
        let mut pick = 260u32.to_be_bytes().to_vec();
        pick.extend_from_slice(b"\x16\x03\x01"); // a ClientHello too early
        e.receive(&pick).unwrap();
        assert!(e.tls_pending());
        assert!(matches!(e.tls_established(), Err(EngineError::EarlyData { len: 3 })));
        // Plain with hostile lengths.
        let mut e = Engine::new(config(Security::Tls { password: Some(b"x".to_vec()) }), [0; 16]);
        vencrypt_to_tls(&mut e, b"RFB 003.008\n", vencrypt::X509_PLAIN);
        let mut msg = u32::MAX.to_be_bytes().to_vec();
        msg.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(e.receive(&msg), Err(EngineError::CredentialsTooLong { .. })));
    }

    #[test]
    fn security_type_not_offered_is_refused() {
        let mut e = Engine::new(config(Security::VncAuth { password: b"x".to_vec() }), [0; 16]);
        e.receive(b"RFB 003.008\n").unwrap();
        assert!(matches!(e.receive(&[1]), Err(EngineError::SecurityNotOffered { chosen: 1 })));
    }

    #[test]
    fn bad_version_is_refused() {
        let mut e = Engine::new(config(Security::None), [0; 16]);
        assert!(matches!(e.receive(b"RFB 004.001\n"), Err(EngineError::UnsupportedVersion { .. })));
        let mut e = Engine::new(config(Security::None), [0; 16]);
        assert!(matches!(e.receive(b"GET / HTTP/1.1\r\n"), Err(EngineError::Wire { .. })));
    }

    #[test]
    fn messages_split_anywhere_give_the_same_events() {
        let msgs = vec![
            ClientMessage::SetEncodings(vec![Encoding::TIGHT, Encoding(-28), Encoding(-254), Encoding::FENCE, Encoding::CONTINUOUS_UPDATES]),
            ClientMessage::FramebufferUpdateRequest { incremental: false, rect: Rect::new(0, 0, 64, 48) },
            ClientMessage::KeyEvent { down: true, keysym: 0x61 },
            ClientMessage::PointerEvent { buttons: 1, x: 3, y: 4 },
            ClientMessage::Fence { flags: fence_flags::REQUEST | fence_flags::BLOCK_BEFORE | 0x100, payload: vec![5] },
            ClientMessage::QemuExtKey { down: true, keysym: 0x61, scancode: 0x1e },
        ];
        let mut bytes = Vec::new();
        for m in &msgs {
            m.emit(&mut bytes);
        }
        for chunk in [1, 2, 3, 7, bytes.len()] {
            let (mut e, _) = handshake(b"RFB 003.008\n", Security::None, b"");
            for c in bytes.chunks(chunk) {
                e.receive(c).unwrap();
            }
            let events: Vec<_> = std::iter::from_fn(|| e.poll_event()).collect();
            assert_eq!(events.len(), 5, "chunk {chunk}: {events:?}");
            assert_eq!(events[2], Event::Key { down: true, keysym: 0x61 });
            assert_eq!(e.settings().preferred, Encoding::TIGHT);
            assert_eq!(e.settings().tight.quality_level, Some(4));
            assert_eq!(e.settings().tight.compress_level, 2);
            let out = e.take_output();
            // server fence request, EndOfContinuousUpdates, then the fence reply with flags masked
            assert_eq!(out[0], 248);
            let reply = &out[out.len() - 10..];
            assert_eq!(reply[..4], [248, 0, 0, 0]);
            assert_eq!(u32::from_be_bytes([reply[4], reply[5], reply[6], reply[7]]), fence_flags::BLOCK_BEFORE);
            assert_eq!(reply[8..], [1, 5]);
        }
    }

    #[test]
    fn colour_map_client_gets_a_palette_and_bad_format_closes() {
        let (mut e, _) = handshake(b"RFB 003.008\n", Security::None, b"");
        let mut b = Vec::new();
        ClientMessage::SetPixelFormat(PixelFormat { true_colour: false, ..PixelFormat::BGR233 }).emit(&mut b);
        e.receive(&b).unwrap();
        let out = e.take_output();
        assert_eq!(out[..6], [1, 0, 0, 0, 1, 0]);
        let mut b = Vec::new();
        ClientMessage::SetPixelFormat(PixelFormat { bits_per_pixel: 24, ..PixelFormat::XRGB8888 }).emit(&mut b);
        assert!(matches!(e.receive(&b), Err(EngineError::BadPixelFormat { .. })));
    }
}
