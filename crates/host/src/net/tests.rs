use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doppel_machine::{Environment, InputEvent, Output};

use super::*;
use crate::live::{LiveEnvironment, OutputSink};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<Vec<u8>>>>);
impl OutputSink for Sink {
    fn console(&mut self, _bytes: &[u8]) {}
    fn net_tx(&mut self, frame: &[u8]) {
        self.0.lock().unwrap().push(frame.to_vec());
    }
}

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// An ARP request from the guest (10.0.2.15) for `target`.
fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[10, 0, 2, 15]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f.resize(60, 0);
    f
}

/// Poll the environment until a `NetRx` arrives (the backend thread delivers asynchronously).
fn next_rx(env: &mut LiveEnvironment) -> Vec<u8> {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        match env.poll(0).unwrap() {
            Some(InputEvent::NetRx(frame)) => return frame,
            Some(other) => panic!("unexpected input {other:?}"),
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    panic!("no frame for the guest within 5 s");
}

#[test]
fn without_a_backend_frames_go_to_the_sink_and_null_counts_them() {
    let sink = Sink::default();
    let (mut env, _input) = LiveEnvironment::new(Box::new(sink.clone()));
    env.output(1, Output::NetTx(b"frame"));
    assert_eq!(*sink.0.lock().unwrap(), vec![b"frame".to_vec()]);
    assert_eq!(env.network_stats(), None);

    env.set_network(Box::new(NullNet::default()));
    env.output(2, Output::NetTx(&[0; 100]));
    env.output(3, Output::NetTx(&[0; 60]));
    let s = env.network_stats().unwrap();
    assert_eq!((s.tx_frames, s.tx_bytes, s.rx_frames), (2, 160, 0));
    assert_eq!(
        sink.0.lock().unwrap().len(),
        1,
        "a backend takes the frames instead of the sink"
    );
    assert_eq!(env.poll(4).unwrap(), None);
}

#[test]
fn loopback_returns_each_frame_as_received_input() {
    let (mut env, input) = LiveEnvironment::new(Box::new(Sink::default()));
    let backend = start(NetMode::Loopback, UserNetConfig::default(), &input)
        .unwrap()
        .unwrap();
    env.set_network(backend);
    env.output(10, Output::NetTx(b"hello"));
    assert_eq!(
        env.poll(11).unwrap(),
        Some(InputEvent::NetRx(b"hello".to_vec()))
    );
    assert_eq!(env.network_stats().unwrap().rx_bytes, 5);
}

#[test]
fn user_network_answers_arp_for_the_gateway_and_dns() {
    let (mut env, input) = LiveEnvironment::new(Box::new(Sink::default()));
    env.set_network(
        start(NetMode::User, UserNetConfig::default(), &input)
            .unwrap()
            .unwrap(),
    );
    for target in [Ipv4Addr::new(10, 0, 2, 2), Ipv4Addr::new(10, 0, 2, 3)] {
        env.output(0, Output::NetTx(&arp_request(target)));
        let reply = next_rx(&mut env);
        assert_eq!(&reply[0..6], &GUEST_MAC, "to the guest");
        assert_eq!(&reply[12..14], &[0x08, 0x06], "an ARP frame");
        assert_eq!(&reply[20..22], &[0, 2], "a reply");
        assert_eq!(
            &reply[28..32],
            &target.octets(),
            "from the address asked for"
        );
        assert_eq!(&reply[38..42], &[10, 0, 2, 15]);
    }
    let s = env.network_stats().unwrap();
    assert_eq!((s.tx_frames, s.rx_frames), (2, 2));
}

#[test]
fn a_forward_whose_host_port_is_taken_fails_naming_the_rule() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let rule: HostFwd = format!("tcp:127.0.0.1:{port}-:80").parse().unwrap();
    let (_env, input) = LiveEnvironment::new(Box::new(Sink::default()));
    let config = UserNetConfig {
        hostfwd: vec![rule],
        ..UserNetConfig::default()
    };
    let err = start(NetMode::User, config, &input)
        .err()
        .expect("the port is taken");
    assert!(
        err.to_string()
            .contains(&format!("tcp:127.0.0.1:{port}-:80")),
        "{err}"
    );
}

#[test]
fn a_forward_listens_on_the_host() {
    // Reserve a free port, release it, forward it: the host can then connect (slirp accepts, then
    // tries the guest, which does not answer here).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_env, input) = LiveEnvironment::new(Box::new(Sink::default()));
    let rule = format!("tcp:127.0.0.1:{port}-:80").parse().unwrap();
    let _net = start(
        NetMode::User,
        UserNetConfig {
            hostfwd: vec![rule],
            ..UserNetConfig::default()
        },
        &input,
    )
    .unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}

#[test]
fn forwards_need_the_user_backend() {
    let (_env, input) = LiveEnvironment::new(Box::new(Sink::default()));
    let config = UserNetConfig {
        hostfwd: vec!["tcp::8080-:80".parse().unwrap()],
        ..UserNetConfig::default()
    };
    let err = start(NetMode::Null, config, &input).err().unwrap();
    assert!(
        err.to_string().contains("--hostfwd needs --net user"),
        "{err}"
    );
    assert!("bogus"
        .parse::<NetMode>()
        .unwrap_err()
        .to_string()
        .contains("known: none, null, loopback, user"));
}
