//! A safe wrapper around libslirp (Debian's `libslirp0`, linked as `-lslirp`): the user-mode TCP/IP
//! stack QEMU uses for `-nic user`. The only module of this crate with `unsafe` code: the raw
//! declarations of the part of `<slirp/libslirp.h>` (4.7) we use, the callbacks libslirp calls, and
//! the `poll(2)` over the descriptors it asks for.
//!
//! [`Slirp`] is single-threaded (libslirp is not thread-safe): create it, feed it guest frames with
//! [`Slirp::input`], and call [`Slirp::poll`] in a loop; frames for the guest come out through the
//! `send` closure given to [`Slirp::new`], from inside `input`, `poll` or a timer. libslirp's clock
//! is the host's monotonic clock (it runs TCP retransmission and delayed-ACK timers); that is fine
//! here because everything slirp says to the guest crosses the machine's environment boundary as
//! recorded input.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::{HostFwd, NetError, Protocol, UserNetConfig};

mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    pub const SLIRP_POLL_IN: c_int = 1 << 0;
    pub const SLIRP_POLL_OUT: c_int = 1 << 1;
    pub const SLIRP_POLL_PRI: c_int = 1 << 2;
    pub const SLIRP_POLL_ERR: c_int = 1 << 3;
    pub const SLIRP_POLL_HUP: c_int = 1 << 4;

    /// `SlirpTimerId` (a C enum: `int`).
    pub type SlirpTimerId = c_int;

    #[repr(C)]
    pub struct Slirp {
        _opaque: [u8; 0],
    }

    pub type SlirpWriteCb =
        unsafe extern "C" fn(buf: *const c_void, len: usize, opaque: *mut c_void) -> isize;
    pub type SlirpTimerCb = unsafe extern "C" fn(opaque: *mut c_void);
    pub type SlirpAddPollCb =
        unsafe extern "C" fn(fd: c_int, events: c_int, opaque: *mut c_void) -> c_int;
    pub type SlirpGetREventsCb = unsafe extern "C" fn(idx: c_int, opaque: *mut c_void) -> c_int;

    /// `SlirpCb`, fields up to version 4 of the configuration.
    #[repr(C)]
    pub struct SlirpCb {
        pub send_packet: Option<SlirpWriteCb>,
        pub guest_error: Option<unsafe extern "C" fn(msg: *const c_char, opaque: *mut c_void)>,
        pub clock_get_ns: Option<unsafe extern "C" fn(opaque: *mut c_void) -> i64>,
        pub timer_new: Option<
            unsafe extern "C" fn(
                cb: SlirpTimerCb,
                cb_opaque: *mut c_void,
                opaque: *mut c_void,
            ) -> *mut c_void,
        >,
        pub timer_free: Option<unsafe extern "C" fn(timer: *mut c_void, opaque: *mut c_void)>,
        pub timer_mod:
            Option<unsafe extern "C" fn(timer: *mut c_void, expire_time: i64, opaque: *mut c_void)>,
        pub register_poll_fd: Option<unsafe extern "C" fn(fd: c_int, opaque: *mut c_void)>,
        pub unregister_poll_fd: Option<unsafe extern "C" fn(fd: c_int, opaque: *mut c_void)>,
        pub notify: Option<unsafe extern "C" fn(opaque: *mut c_void)>,
        pub init_completed: Option<unsafe extern "C" fn(slirp: *mut Slirp, opaque: *mut c_void)>,
        pub timer_new_opaque: Option<
            unsafe extern "C" fn(
                id: SlirpTimerId,
                cb_opaque: *mut c_void,
                opaque: *mut c_void,
            ) -> *mut c_void,
        >,
    }

    /// `SlirpConfig` version 4 (libslirp 4.7). Newer libraries accept older versions.
    #[repr(C)]
    pub struct SlirpConfig {
        pub version: u32,
        pub restricted: c_int,
        pub in_enabled: bool,
        pub vnetwork: libc::in_addr,
        pub vnetmask: libc::in_addr,
        pub vhost: libc::in_addr,
        pub in6_enabled: bool,
        pub vprefix_addr6: libc::in6_addr,
        pub vprefix_len: u8,
        pub vhost6: libc::in6_addr,
        pub vhostname: *const c_char,
        pub tftp_server_name: *const c_char,
        pub tftp_path: *const c_char,
        pub bootfile: *const c_char,
        pub vdhcp_start: libc::in_addr,
        pub vnameserver: libc::in_addr,
        pub vnameserver6: libc::in6_addr,
        pub vdnssearch: *const *const c_char,
        pub vdomainname: *const c_char,
        pub if_mtu: usize,
        pub if_mru: usize,
        pub disable_host_loopback: bool,
        pub enable_emu: bool,
        pub outbound_addr: *const libc::sockaddr_in,
        pub outbound_addr6: *const libc::sockaddr_in6,
        pub disable_dns: bool,
        pub disable_dhcp: bool,
    }

    #[link(name = "slirp")]
    extern "C" {
        pub fn slirp_new(
            cfg: *const SlirpConfig,
            callbacks: *const SlirpCb,
            opaque: *mut c_void,
        ) -> *mut Slirp;
        pub fn slirp_cleanup(slirp: *mut Slirp);
        pub fn slirp_pollfds_fill(
            slirp: *mut Slirp,
            timeout: *mut u32,
            add_poll: SlirpAddPollCb,
            opaque: *mut c_void,
        );
        pub fn slirp_pollfds_poll(
            slirp: *mut Slirp,
            select_error: c_int,
            get_revents: SlirpGetREventsCb,
            opaque: *mut c_void,
        );
        pub fn slirp_input(slirp: *mut Slirp, pkt: *const u8, pkt_len: c_int);
        pub fn slirp_handle_timer(slirp: *mut Slirp, id: SlirpTimerId, cb_opaque: *mut c_void);
        pub fn slirp_add_hostfwd(
            slirp: *mut Slirp,
            is_udp: c_int,
            host_addr: libc::in_addr,
            host_port: c_int,
            guest_addr: libc::in_addr,
            guest_port: c_int,
        ) -> c_int;
        pub fn slirp_connection_info(slirp: *mut Slirp) -> *mut c_char;
        pub fn slirp_version_string() -> *const c_char;
    }
}

/// The version of the libslirp this process runs with, e.g. `4.7.0`.
pub fn version() -> String {
    // SAFETY: slirp_version_string returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::slirp_version_string()) }
        .to_string_lossy()
        .into_owned()
}

fn in_addr(a: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from(a).to_be(),
    }
}

/// Receives each frame libslirp sends to the guest.
pub type SendFrame = Box<dyn FnMut(&[u8])>;

/// A timer libslirp created.
struct Timer {
    /// What to call when it fires.
    kind: TimerKind,
    cb_opaque: *mut c_void,
    /// Expiry in milliseconds of [`State::clock_ns`], if armed.
    expire_ms: Option<i64>,
}

#[derive(Clone, Copy)]
enum TimerKind {
    /// Created with `timer_new_opaque`: fire through `slirp_handle_timer(id, cb_opaque)`.
    Opaque(ffi::SlirpTimerId),
    /// Created with the older `timer_new`: call `cb(cb_opaque)`.
    Callback(ffi::SlirpTimerCb),
}

/// What the callbacks reach through libslirp's `opaque` pointer. Boxed, so its address is stable.
struct State {
    send: SendFrame,
    epoch: Instant,
    /// Live timers, each a `Box` leaked to libslirp as its handle until `timer_free`.
    timers: Vec<*mut Timer>,
    /// The descriptors of the current poll round (`add_poll` appends, `get_revents` reads).
    pollfds: Vec<libc::pollfd>,
}

impl State {
    /// Monotonic nanoseconds; starts at one second so that no timestamp libslirp takes is 0
    /// (it uses 0 as "unset" for some of its timers).
    fn clock_ns(&self) -> i64 {
        let ns = self.epoch.elapsed().as_nanos() + 1_000_000_000;
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

/// Recover the state from libslirp's opaque pointer.
///
/// # Safety
/// `opaque` must be the pointer given to `slirp_new`, i.e. a live `State` owned by a [`Slirp`],
/// not aliased by another live reference (libslirp calls back only from inside our calls into it,
/// during which `Slirp` holds no reference to the state).
unsafe fn state<'a>(opaque: *mut c_void) -> &'a mut State {
    // SAFETY: guaranteed by the caller (see above).
    unsafe { &mut *opaque.cast::<State>() }
}

unsafe extern "C" fn cb_send_packet(buf: *const c_void, len: usize, opaque: *mut c_void) -> isize {
    // SAFETY: libslirp passes the opaque pointer of slirp_new, and a buffer of `len` bytes.
    let (st, frame) = unsafe {
        (
            state(opaque),
            std::slice::from_raw_parts(buf.cast::<u8>(), len),
        )
    };
    (st.send)(frame);
    isize::try_from(len).unwrap_or(isize::MAX)
}

unsafe extern "C" fn cb_guest_error(msg: *const c_char, _opaque: *mut c_void) {
    // SAFETY: libslirp passes a NUL-terminated message.
    let msg = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    tracing::warn!(target: "doppel_host::net", "slirp: guest error: {msg}");
}

unsafe extern "C" fn cb_clock_get_ns(opaque: *mut c_void) -> i64 {
    // SAFETY: the opaque pointer of slirp_new.
    unsafe { state(opaque) }.clock_ns()
}

fn new_timer(opaque: *mut c_void, kind: TimerKind, cb_opaque: *mut c_void) -> *mut c_void {
    let timer = Box::into_raw(Box::new(Timer {
        kind,
        cb_opaque,
        expire_ms: None,
    }));
    // SAFETY: the opaque pointer of slirp_new.
    unsafe { state(opaque) }.timers.push(timer);
    timer.cast()
}

unsafe extern "C" fn cb_timer_new(
    cb: ffi::SlirpTimerCb,
    cb_opaque: *mut c_void,
    opaque: *mut c_void,
) -> *mut c_void {
    new_timer(opaque, TimerKind::Callback(cb), cb_opaque)
}

unsafe extern "C" fn cb_timer_new_opaque(
    id: ffi::SlirpTimerId,
    cb_opaque: *mut c_void,
    opaque: *mut c_void,
) -> *mut c_void {
    new_timer(opaque, TimerKind::Opaque(id), cb_opaque)
}

unsafe extern "C" fn cb_timer_free(timer: *mut c_void, opaque: *mut c_void) {
    // SAFETY: the opaque pointer of slirp_new.
    let st = unsafe { state(opaque) };
    let timer = timer.cast::<Timer>();
    if let Some(i) = st.timers.iter().position(|&t| t == timer) {
        st.timers.swap_remove(i);
        // SAFETY: `timer` came from Box::into_raw in new_timer and is freed exactly once (it was
        // still in the live list).
        drop(unsafe { Box::from_raw(timer) });
    }
}

unsafe extern "C" fn cb_timer_mod(timer: *mut c_void, expire_time: i64, opaque: *mut c_void) {
    // SAFETY: the opaque pointer of slirp_new.
    let st = unsafe { state(opaque) };
    let timer = timer.cast::<Timer>();
    if st.timers.contains(&timer) {
        // SAFETY: a live timer (in the list), not otherwise referenced during this call.
        unsafe { (*timer).expire_ms = Some(expire_time) };
    }
}

unsafe extern "C" fn cb_poll_fd(_fd: c_int, _opaque: *mut c_void) {}
unsafe extern "C" fn cb_notify(_opaque: *mut c_void) {}
unsafe extern "C" fn cb_init_completed(_slirp: *mut ffi::Slirp, _opaque: *mut c_void) {}

unsafe extern "C" fn cb_add_poll(fd: c_int, events: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: the opaque pointer we pass to slirp_pollfds_fill (the same State).
    let st = unsafe { state(opaque) };
    let mut ev: libc::c_short = 0;
    if events & ffi::SLIRP_POLL_IN != 0 {
        ev |= libc::POLLIN;
    }
    if events & ffi::SLIRP_POLL_OUT != 0 {
        ev |= libc::POLLOUT;
    }
    if events & ffi::SLIRP_POLL_PRI != 0 {
        ev |= libc::POLLPRI;
    }
    st.pollfds.push(libc::pollfd {
        fd,
        events: ev,
        revents: 0,
    });
    c_int::try_from(st.pollfds.len() - 1).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn cb_get_revents(idx: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: the opaque pointer we pass to slirp_pollfds_poll (the same State).
    let st = unsafe { state(opaque) };
    let Some(p) = usize::try_from(idx).ok().and_then(|i| st.pollfds.get(i)) else {
        return 0;
    };
    let mut r = 0;
    if p.revents & libc::POLLIN != 0 {
        r |= ffi::SLIRP_POLL_IN;
    }
    if p.revents & libc::POLLOUT != 0 {
        r |= ffi::SLIRP_POLL_OUT;
    }
    if p.revents & libc::POLLPRI != 0 {
        r |= ffi::SLIRP_POLL_PRI;
    }
    if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        r |= ffi::SLIRP_POLL_ERR;
    }
    if p.revents & libc::POLLHUP != 0 {
        r |= ffi::SLIRP_POLL_HUP;
    }
    r
}

static CALLBACKS: ffi::SlirpCb = ffi::SlirpCb {
    send_packet: Some(cb_send_packet),
    guest_error: Some(cb_guest_error),
    clock_get_ns: Some(cb_clock_get_ns),
    timer_new: Some(cb_timer_new),
    timer_free: Some(cb_timer_free),
    timer_mod: Some(cb_timer_mod),
    register_poll_fd: Some(cb_poll_fd),
    unregister_poll_fd: Some(cb_poll_fd),
    notify: Some(cb_notify),
    init_completed: Some(cb_init_completed),
    timer_new_opaque: Some(cb_timer_new_opaque),
};

/// One libslirp instance: a virtual router, DHCP and DNS server in front of the host's sockets.
pub struct Slirp {
    raw: *mut ffi::Slirp,
    /// Owned here, reached by libslirp through the raw pointer; freed after `slirp_cleanup`.
    state: *mut State,
}

impl Slirp {
    /// A new stack with `config`'s addresses and forwards. `send` receives every Ethernet frame for
    /// the guest.
    pub fn new(config: &UserNetConfig, send: SendFrame) -> Result<Slirp, NetError> {
        let zero6 = libc::in6_addr { s6_addr: [0; 16] };
        let cfg = ffi::SlirpConfig {
            version: 4,
            restricted: c_int::from(config.restrict),
            in_enabled: true,
            vnetwork: in_addr(config.network),
            vnetmask: in_addr(config.netmask),
            vhost: in_addr(config.host),
            in6_enabled: false,
            vprefix_addr6: zero6,
            vprefix_len: 0,
            vhost6: zero6,
            vhostname: std::ptr::null(),
            tftp_server_name: std::ptr::null(),
            tftp_path: std::ptr::null(),
            bootfile: std::ptr::null(),
            vdhcp_start: in_addr(config.guest),
            vnameserver: in_addr(config.dns),
            vnameserver6: zero6,
            vdnssearch: std::ptr::null(),
            vdomainname: std::ptr::null(),
            if_mtu: 0,
            if_mru: 0,
            disable_host_loopback: false,
            enable_emu: false,
            outbound_addr: std::ptr::null(),
            outbound_addr6: std::ptr::null(),
            disable_dns: false,
            disable_dhcp: false,
        };
        let state = Box::into_raw(Box::new(State {
            send,
            epoch: Instant::now(),
            timers: Vec::new(),
            pollfds: Vec::new(),
        }));
        // SAFETY: cfg and CALLBACKS are valid for the call (libslirp copies the configuration and
        // keeps the callbacks pointer: CALLBACKS is static); `state` lives until Drop, after
        // slirp_cleanup.
        let raw = unsafe { ffi::slirp_new(&cfg, &CALLBACKS, state.cast()) };
        if raw.is_null() {
            // SAFETY: `state` came from Box::into_raw above and libslirp did not keep it.
            drop(unsafe { Box::from_raw(state) });
            return Err(NetError::SlirpInit {
                network: config.network,
                netmask: config.netmask,
            });
        }
        let mut slirp = Slirp { raw, state };
        for fwd in &config.hostfwd {
            slirp.add_hostfwd(fwd)?;
        }
        Ok(slirp)
    }

    /// Forward connections to a host address and port into the guest.
    pub fn add_hostfwd(&mut self, fwd: &HostFwd) -> Result<(), NetError> {
        let guest = fwd.guest_addr.unwrap_or(Ipv4Addr::UNSPECIFIED);
        // SAFETY: self.raw is a live instance; plain values otherwise.
        let rc = unsafe {
            ffi::slirp_add_hostfwd(
                self.raw,
                c_int::from(fwd.protocol == Protocol::Udp),
                in_addr(fwd.host_addr),
                c_int::from(fwd.host_port),
                in_addr(guest),
                c_int::from(fwd.guest_port),
            )
        };
        if rc < 0 {
            return Err(NetError::HostFwd {
                rule: fwd.to_string(),
                reason: std::io::Error::last_os_error().to_string(),
            });
        }
        Ok(())
    }

    /// A frame the guest sent. Frames for the guest (ARP replies, DHCP, TCP data) may be sent from
    /// inside this call.
    pub fn input(&mut self, frame: &[u8]) {
        let Ok(len) = c_int::try_from(frame.len()) else {
            return;
        };
        // SAFETY: self.raw is live; the buffer is valid for `len` bytes during the call.
        unsafe { ffi::slirp_input(self.raw, frame.as_ptr(), len) };
    }

    /// One round of libslirp's event loop: wait at most `max_wait` (less if libslirp's own TCP
    /// timers or our timers are due sooner) for its sockets or for `wake` to become readable, then
    /// let libslirp handle what is ready and fire due timers. Returns whether `wake` is readable.
    pub fn poll(&mut self, max_wait: Duration, wake: BorrowedFd<'_>) -> Result<bool, NetError> {
        let now_ms = self.now_ms();
        let mut timeout = u32::try_from(max_wait.as_millis()).unwrap_or(u32::MAX);
        if let Some(due) = self.next_timer_ms() {
            timeout =
                timeout.min(u32::try_from(due.saturating_sub(now_ms).max(0)).unwrap_or(u32::MAX));
        }
        {
            // SAFETY: our own state; no other reference to it is live here.
            let st = unsafe { &mut *self.state };
            st.pollfds.clear();
            st.pollfds.push(libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: self.raw is live; the callback gets our state pointer, the same one slirp_new
        // has, which no Rust reference aliases during the call.
        unsafe { ffi::slirp_pollfds_fill(self.raw, &mut timeout, cb_add_poll, self.state.cast()) };
        let rc = {
            // SAFETY: as above.
            let st = unsafe { &mut *self.state };
            let n = libc::nfds_t::try_from(st.pollfds.len()).unwrap_or(libc::nfds_t::MAX);
            let t = c_int::try_from(timeout).unwrap_or(c_int::MAX);
            // SAFETY: pollfds is a valid array of `n` pollfd structs for the duration of the call.
            unsafe { libc::poll(st.pollfds.as_mut_ptr(), n, t) }
        };
        let err = std::io::Error::last_os_error();
        if rc < 0 && err.kind() != std::io::ErrorKind::Interrupted {
            return Err(NetError::Poll(err));
        }
        // SAFETY: as for slirp_pollfds_fill.
        unsafe {
            ffi::slirp_pollfds_poll(
                self.raw,
                c_int::from(rc < 0),
                cb_get_revents,
                self.state.cast(),
            )
        };
        self.fire_timers();
        // SAFETY: our own state; no other reference to it is live here.
        let woken = unsafe { &*self.state }
            .pollfds
            .first()
            .is_some_and(|p| p.revents != 0);
        Ok(woken)
    }

    fn now_ms(&self) -> i64 {
        // SAFETY: our own state; no other reference to it is live here.
        unsafe { &*self.state }.clock_ns() / 1_000_000
    }

    fn next_timer_ms(&self) -> Option<i64> {
        // SAFETY: our own state and its live timers; no other reference is live here.
        let st = unsafe { &*self.state };
        // SAFETY: every pointer in `timers` is a live Box<Timer>.
        st.timers
            .iter()
            .filter_map(|&t| unsafe { (*t).expire_ms })
            .min()
    }

    /// Call the timers whose expiry has passed (each disarmed first; it may re-arm itself).
    fn fire_timers(&mut self) {
        let now = self.now_ms();
        loop {
            let due = {
                // SAFETY: our own state; no other reference to it is live here.
                let st = unsafe { &*self.state };
                // SAFETY: every pointer in `timers` is a live Box<Timer>.
                st.timers
                    .iter()
                    .copied()
                    .find(|&t| unsafe { (*t).expire_ms }.is_some_and(|e| e <= now))
            };
            let Some(t) = due else { break };
            // SAFETY: `t` is live (in the list); read its fields and disarm it before the call,
            // which may free or re-arm it.
            let (kind, cb_opaque) = unsafe {
                (*t).expire_ms = None;
                ((*t).kind, (*t).cb_opaque)
            };
            match kind {
                // SAFETY: the id and cb_opaque libslirp gave when creating the timer.
                TimerKind::Opaque(id) => unsafe {
                    ffi::slirp_handle_timer(self.raw, id, cb_opaque)
                },
                // SAFETY: the callback and argument libslirp gave when creating the timer.
                TimerKind::Callback(cb) => unsafe { cb(cb_opaque) },
            }
        }
    }

    /// libslirp's human-readable table of connections (for logs and debugging).
    pub fn connection_info(&self) -> String {
        // SAFETY: self.raw is live; the result is a g_malloc'ed string we must free.
        let p = unsafe { ffi::slirp_connection_info(self.raw) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: a NUL-terminated string from libslirp.
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        // SAFETY: allocated by glib's g_malloc, which uses the system allocator (glib ≥ 2.46).
        unsafe { libc::free(p.cast()) };
        s
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        // SAFETY: self.raw is live and dropped once; cleanup may call timer_free on our state,
        // which is still alive.
        unsafe { ffi::slirp_cleanup(self.raw) };
        // SAFETY: `state` came from Box::into_raw in `new`; libslirp no longer references it.
        let st = unsafe { Box::from_raw(self.state) };
        for &t in &st.timers {
            // SAFETY: timers never freed by libslirp are still our boxes.
            drop(unsafe { Box::from_raw(t) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn config_layout_matches_the_c_header() {
        // Offsets printed by a C program compiled against <slirp/libslirp.h> 4.7.0 on x86-64.
        assert_eq!(size_of::<ffi::SlirpConfig>(), 184);
        assert_eq!(offset_of!(ffi::SlirpConfig, restricted), 4);
        assert_eq!(offset_of!(ffi::SlirpConfig, vnetwork), 12);
        assert_eq!(offset_of!(ffi::SlirpConfig, in6_enabled), 24);
        assert_eq!(offset_of!(ffi::SlirpConfig, vprefix_addr6), 28);
        assert_eq!(offset_of!(ffi::SlirpConfig, vprefix_len), 44);
        assert_eq!(offset_of!(ffi::SlirpConfig, vhost6), 48);
        assert_eq!(offset_of!(ffi::SlirpConfig, vhostname), 64);
        assert_eq!(offset_of!(ffi::SlirpConfig, vdhcp_start), 96);
        assert_eq!(offset_of!(ffi::SlirpConfig, vnameserver), 100);
        assert_eq!(offset_of!(ffi::SlirpConfig, vnameserver6), 104);
        assert_eq!(offset_of!(ffi::SlirpConfig, vdnssearch), 120);
        assert_eq!(offset_of!(ffi::SlirpConfig, if_mtu), 136);
        assert_eq!(offset_of!(ffi::SlirpConfig, disable_host_loopback), 152);
        assert_eq!(offset_of!(ffi::SlirpConfig, enable_emu), 153);
        assert_eq!(offset_of!(ffi::SlirpConfig, outbound_addr), 160);
        assert_eq!(offset_of!(ffi::SlirpConfig, disable_dns), 176);
        assert_eq!(offset_of!(ffi::SlirpConfig, disable_dhcp), 177);
        assert_eq!(size_of::<ffi::SlirpCb>(), 88);
    }

    #[test]
    fn version_is_4_or_later() {
        let v = version();
        let major: u32 = v
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        assert!(major >= 4, "libslirp {v}");
    }
}
