//! Runs the `client_messages` fuzz target's body over its seed corpus and over deterministic
#![allow(clippy::cast_possible_truncation)] // test: a PRNG picks indices and bytes by truncation
//! mutations of it, so every `cargo test` exercises it (the real fuzzing is
//! `cargo +nightly fuzz run client_messages` in crates/rfb).

use doppel_rfb::testutil::fuzzing::client_messages;

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/client_messages");
    let mut v: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    v.sort();
    assert!(v.len() >= 8, "seed corpus missing in {}", dir.display());
    v
}

#[test]
fn seed_corpus() {
    for s in seeds() {
        client_messages(&s);
    }
}

#[test]
fn mutated_seeds() {
    let seeds = seeds();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let mut s = seeds[(next() % seeds.len() as u64) as usize].clone();
        let other = &seeds[(next() % seeds.len() as u64) as usize];
        for _ in 0..(next() % 6) {
            let r = next();
            match r % 4 {
                0 if !s.is_empty() => {
                    let i = (r >> 8) as usize % s.len();
                    s[i] = (r >> 32) as u8;
                }
                1 if !s.is_empty() => {
                    let i = (r >> 8) as usize % s.len();
                    s.truncate(i);
                }
                2 => s.extend_from_slice(other),
                _ => {
                    let i = (r >> 8) as usize % (s.len() + 1);
                    s.insert(i, (r >> 40) as u8);
                }
            }
        }
        client_messages(&s);
    }
}
