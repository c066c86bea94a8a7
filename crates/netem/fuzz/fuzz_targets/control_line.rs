//! Fuzzes the control protocol and unit parsers: any input must give a command or a clear error,
//! never a panic; an accepted `set` must survive a display/parse round trip.
#![no_main]

use doppel_netem::control::{parse_command, Command};
use doppel_netem::units::{parse_duration, parse_loss, parse_rate, parse_size};
use doppel_netem::LinkParams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_duration(&text);
    let _ = parse_rate(&text);
    let _ = parse_size(&text);
    let _ = parse_loss(&text);
    if let Ok(Command::Set { target, changes }) = parse_command(&text) {
        let p = changes.apply(&LinkParams::default());
        let again =
            parse_command(&format!("set {target} {p}")).expect("displayed parameters parse back");
        let Command::Set { changes: c2, .. } = again else {
            panic!("round trip changed the command")
        };
        assert_eq!(c2.apply(&LinkParams::default()), p);
    }
});
