//! The guest's workloads, run the way a user runs them: `doppel workload run NAME` on the guest
//! that `guest/build.sh` built (found like tests/guest.rs finds it: `$DOPPEL_GUEST_DIR`, else
//! `$DOPPEL_CACHE/guest/current`, else `~/.cache/doppel/guest/current`; a missing guest fails).
//!
//! The heavy ones (video at 360p and 480p, the 100 MB copy) are `#[ignore]`d; `scripts/workloads.sh`
//! runs them (`cargo test -p doppel --test workloads -- --include-ignored`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use doppel_testkit::{guest_dir, guest_file};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("doppel-workloads-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// `key=value` lines of the report.
    fn report(&self) -> HashMap<String, String> {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with("guest: ") && !l.starts_with("capture "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
    fn guest_line(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("guest: "))
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no guest line `{prefix}…`:\n{}\n{}", self.stdout, self.stderr))
    }
    fn captures(&self) -> Vec<(String, String)> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("capture "))
            .filter_map(|l| l.split_once(" fb_blake3="))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }
}

fn doppel(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_doppel"))
        .args(args)
        .env("DOPPEL_GUEST_DIR", guest_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run_ok(args: &[&str]) -> Run {
    let mut all = vec!["workload", "run"];
    all.extend_from_slice(args);
    let r = doppel(&all);
    assert_eq!(r.code, 0, "doppel {all:?} failed:\n{}\n{}", r.stdout, r.stderr);
    r
}

/// `key=value` fields of one guest line.
fn fields(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace().filter_map(|w| w.split_once('=')).collect()
}

#[test]
fn list_shows_the_workloads_of_the_guest_image() {
    let r = doppel(&["workload", "list"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for name in ["idle", "emptyloop", "forkbomb", "cp", "edit", "game", "desktop", "video-local-240p", "video-local-480p"] {
        assert!(r.stdout.lines().any(|l| l.starts_with(&format!("{name} "))), "{name} missing:\n{}", r.stdout);
    }
}

#[test]
fn unknown_names_and_images_without_the_workload_are_clear_errors() {
    let r = doppel(&["workload", "run", "nonesuch"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no workload named `nonesuch`") && r.stderr.contains("idle"), "{}", r.stderr);

    // A workload the issue names but this image does not carry.
    let r = doppel(&["workload", "run", "video-stream-240p"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("has no workload `video-stream-240p`"), "{}", r.stderr);

    // An image without a workload list (a guest built before workloads existed).
    let dir = tmp("old-guest");
    std::fs::copy(guest_file("Image"), dir.join("Image")).unwrap();
    let r = doppel(&["workload", "run", "idle", "--guest", dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("workloads.txt"), "{}", r.stderr);

    // A list naming a workload whose disk image is missing.
    std::fs::copy(guest_file("initramfs.cpio"), dir.join("initramfs.cpio")).unwrap();
    std::fs::write(dir.join("workloads.txt"), "cp\tdisk\t-\tcopies\n").unwrap();
    let r = doppel(&["workload", "run", "cp", "--guest", dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("workloads.img"), "{}", r.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn idle_sleeps_for_its_seconds_of_guest_time() {
    let r = run_ok(&["idle", "--seconds", "3"]);
    let rep = r.report();
    assert_eq!(rep["exit"], "0");
    r.guest_line("idle: done");
    let s: f64 = rep["guest_seconds"].parse().unwrap();
    assert!(s >= 3.0, "{}", r.stdout);
    // Idle: the guest runs far fewer instructions than its nominal 100 MIPS would give.
    let mips: f64 = rep["guest_mips"].parse().unwrap();
    assert!(mips < 50.0, "an idle guest at {mips} MIPS:\n{}", r.stdout);
}

#[test]
fn emptyloop_keeps_the_cpu_busy() {
    let r = run_ok(&["emptyloop", "--seconds", "1"]);
    let done = fields(r.guest_line("emptyloop: done"));
    let iterations: u64 = done["iterations"].parse().unwrap();
    assert!(iterations >= 1 << 20, "{}", r.stdout);
    let mips: f64 = r.report()["guest_mips"].parse().unwrap();
    assert!(mips > 70.0, "a busy guest at {mips} MIPS:\n{}", r.stdout);
}

#[test]
fn forkbomb_runs_many_short_processes() {
    let r = run_ok(&["forkbomb", "--args", "300"]);
    let done = fields(r.guest_line("forkbomb: done"));
    assert_eq!(done["processes"], "300", "{}", r.stdout);
}

fn sha256_of(text: &str) -> String {
    let dir = tmp("sha");
    let f = dir.join("x");
    std::fs::write(&f, text).unwrap();
    let out = Command::new("sha256sum").arg(&f).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

#[test]
#[ignore = "copies 100 MB in the guest (about a minute); scripts/workloads.sh runs it"]
fn cp_copies_100_mb_and_the_copy_has_the_host_checksum() {
    let r = run_ok(&["cp"]);
    let done = fields(r.guest_line("cp: copied"));
    assert_eq!(done["bytes"], (100u64 << 20).to_string());
    // The MD5 the host computed when it made the disk.
    let want = std::fs::read_to_string(guest_file("workloads-big.md5")).unwrap();
    assert_eq!(done["md5"], want.trim(), "{}", r.stdout);
    // And the host's record of the disk's files agrees with it.
    let sums = std::fs::read_to_string(guest_file("workloads-files.sha256")).unwrap();
    assert!(sums.contains(&format!("{}  big.md5", sha256_of(&want))), "{sums}");
}

/// A PPM (P6) file: width, height, RGB bytes.
fn read_ppm(path: &Path) -> (usize, usize, Vec<u8>) {
    let data = std::fs::read(path).unwrap();
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while data[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !data[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
    }
    assert_eq!(fields[0], "P6");
    let (w, h) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (w, h, data[at + 1..].to_vec())
}

#[test]
fn edit_types_into_vi_on_the_framebuffer_and_saves_the_text() {
    let dir = tmp("edit");
    let r = run_ok(&["edit", "--capture", dir.to_str().unwrap()]);
    let typed: Vec<&str> = r.stdout.lines().filter_map(|l| l.strip_prefix("guest: edit: | ")).collect();
    assert_eq!(
        typed,
        ["Hello from doppel.", "The quick brown fox jumps over the lazy dog, 42 times!"],
        "{}",
        r.stdout
    );
    // The capture is taken after vi exits; vi's screen (the text) is still on the console.
    let (w, h, rgb) = read_ppm(&dir.join("edit-final.ppm"));
    assert_eq!((w, h), (640, 480));
    let lit = rgb.chunks_exact(3).filter(|p| p.iter().any(|&c| c > 100)).count();
    // 2 lines of text in an 8x16 font: hundreds of lit pixels, far from a full screen.
    assert!(lit > 500 && lit < w * h / 4, "{lit} lit pixels");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn game(script: &str) -> Run {
    let r = run_ok(&["game", "--seconds", "6", "--script", script]);
    assert_eq!(r.report()["inputs"].split('/').next(), r.report()["inputs"].split('/').nth(1));
    r
}

#[test]
fn game_screen_follows_the_scripted_keys_and_repeats_exactly() {
    let a = game("default");
    let a2 = game("default");
    let b = game("alt");
    let final_of = |r: &Run| {
        r.captures()
            .into_iter()
            .find(|(l, _)| l == "game-final")
            .unwrap_or_else(|| panic!("no game-final capture:\n{}", r.stdout))
            .1
    };
    assert_eq!(final_of(&a), final_of(&a2), "same script, different screens");
    assert_eq!(a.report()["state_hash"], a2.report()["state_hash"]);
    assert_ne!(final_of(&a), final_of(&b), "different scripts, same screen");
    // The keys reached the game and moved the ship.
    let da = fields(a.guest_line("game: done"));
    let db = fields(b.guest_line("game: done"));
    assert_ne!((da["x"], da["y"]), (db["x"], db["y"]));
    assert!(a.stdout.contains("game: key 106 1"), "{}", a.stdout);
    let shots: u32 = da["shots"].parse().unwrap();
    assert!(shots > 0, "{}", a.stdout);
}

#[test]
fn desktop_shows_the_launcher_menu_on_the_framebuffer_console() {
    let dir = tmp("desktop");
    let shot = dir.join("desktop.ppm");
    let r = run_ok(&["desktop", "--seconds", "8", "--screenshot", shot.to_str().unwrap()]);
    assert_eq!(r.report()["ended"], "seconds");
    r.guest_line("desktop: ready");
    // The launcher's title bar: fbcon's blue (colour 4, 0x0000aa) across the first character
    // row; the menu below is text on black.
    let (w, _, rgb) = read_ppm(&shot);
    let blue = rgb[..w * 16 * 3].chunks_exact(3).filter(|p| p == &[0, 0, 0xaa]).count();
    assert!(blue > w * 16 / 2, "{blue} blue pixels in the top row of characters");
    let lit = rgb[w * 32 * 3..].chunks_exact(3).filter(|p| p.iter().any(|&c| c > 100)).count();
    assert!(lit > 2000, "the menu text: {lit} lit pixels");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Video: the guest's frames against the host's own decode of the same file.

/// Frames of `video` decoded by the host's ffmpeg, as YUV 4:2:0.
fn reference_frames(video: &Path) -> (usize, usize, Vec<Vec<u8>>) {
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(video)
        .output()
        .expect("ffprobe (Debian ffmpeg, scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&probe.stdout);
    let (w, h) = text.trim().split_once(',').unwrap();
    let (w, h): (usize, usize) = (w.parse().unwrap(), h.parse().unwrap());
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-threads", "1", "-i"])
        .arg(video)
        // Passthrough: one output frame per decoded frame (the default constant-rate output
        // repeats the last one to fill the container's duration).
        .args(["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let size = w * h * 3 / 2;
    (w, h, out.stdout.chunks_exact(size).map(<[u8]>::to_vec).collect())
}

/// The player's conversion (BT.601 limited range, integer, nearest chroma), on the host.
fn to_rgb(w: usize, h: usize, yuv: &[u8]) -> Vec<u8> {
    let clip = |v: i32| u8::try_from(v.clamp(0, 255)).unwrap_or(u8::MAX);
    let (ys, us, vs) = (&yuv[..w * h], &yuv[w * h..w * h * 5 / 4], &yuv[w * h * 5 / 4..]);
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let c = 298 * (i32::from(ys[y * w + x]) - 16) + 128;
            let d = i32::from(us[(y / 2) * (w / 2) + x / 2]) - 128;
            let e = i32::from(vs[(y / 2) * (w / 2) + x / 2]) - 128;
            out.extend([clip((c + 409 * e) >> 8), clip((c - 100 * d - 208 * e) >> 8), clip((c + 516 * d) >> 8)]);
        }
    }
    out
}

/// Mean absolute difference between the centred video area of a 640x480 screen and `rgb`.
fn mean_diff(screen: &[u8], w: usize, h: usize, rgb: &[u8]) -> f64 {
    let (x0, y0) = ((640 - w) / 2, (480 - h) / 2);
    let mut sum = 0u64;
    for y in 0..h {
        let s = &screen[((y0 + y) * 640 + x0) * 3..][..w * 3];
        let r = &rgb[y * w * 3..][..w * 3];
        sum += s.iter().zip(r).map(|(a, b)| u64::from(a.abs_diff(*b))).sum::<u64>();
    }
    sum as f64 / (w * h * 3) as f64
}

/// Plays `video-local-RES`, then checks every captured frame against the host's decode: the
/// mean absolute difference per channel must be under 1.5 (IDCT rounding may differ between the
/// host's SIMD and the guest's C code), and the frame must match its own reference better than
/// its neighbours (so a frame shown out of order fails).
fn video(res: &str) -> f64 {
    let dir = tmp(&format!("video-{res}"));
    let name = format!("video-local-{res}");
    let r = run_ok(&[name.as_str(), "--capture", dir.to_str().unwrap()]);
    let done = fields(r.guest_line("player: done"));
    let (w, h, refs) = reference_frames(&guest_file(&format!("video-{res}.m1v")));
    assert_eq!(done["frames"], refs.len().to_string(), "{}", r.stdout);
    let mut checked = 0;
    for (label, _) in r.captures() {
        let Some(n) = label.strip_prefix("frame-") else { continue };
        let n: usize = n.parse().unwrap();
        let (sw, sh, screen) = read_ppm(&dir.join(format!("{label}.ppm")));
        assert_eq!((sw, sh), (640, 480));
        let d = mean_diff(&screen, w, h, &to_rgb(w, h, &refs[n]));
        assert!(d < 1.5, "frame {n}: mean difference {d:.3} from the host's decode");
        for m in [n.wrapping_sub(1), n + 1] {
            if let Some(other) = refs.get(m) {
                let e = mean_diff(&screen, w, h, &to_rgb(w, h, other));
                assert!(d < e, "frame {n} on screen is closer to frame {m} ({e:.3} vs {d:.3})");
            }
        }
        checked += 1;
    }
    let shown: usize = done["shown"].parse().unwrap();
    assert_eq!(checked, shown, "every shown frame was captured and checked");
    assert!(shown > 0);
    std::fs::remove_dir_all(&dir).unwrap();
    done["fps"].parse().unwrap()
}

#[test]
fn video_240p_frames_on_the_framebuffer_match_the_hosts_decode() {
    let fps = video("240p");
    assert!(fps > 0.0);
}

#[test]
#[ignore = "360p playback takes minutes on a shared machine; scripts/workloads.sh runs it"]
fn video_360p_frames_on_the_framebuffer_match_the_hosts_decode() {
    video("360p");
}

#[test]
#[ignore = "480p playback takes minutes on a shared machine; scripts/workloads.sh runs it"]
fn video_480p_frames_on_the_framebuffer_match_the_hosts_decode() {
    video("480p");
}
