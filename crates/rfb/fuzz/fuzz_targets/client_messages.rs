//! `cargo +nightly fuzz run client_messages` (from crates/rfb): client messages into the parser
//! and into a whole session whose output must stay decodable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    doppel_rfb::testutil::fuzzing::client_messages(data);
});
