//! Every encoder round-tripped through the independent test decoder, for several client pixel
//! formats and successive updates over the same connection state (persistent zlib streams).

use doppel_rfb::encode::{Encoders, TightOptions};
use doppel_rfb::pattern;
use doppel_rfb::pixel::{Source, Translator};
use doppel_rfb::testutil::decoder::{Decoder, ServerMessage};
use doppel_rfb::wire::{emit_update_header, Encoding, PixelFormat, Rect};

const W: u16 = 300;
const H: u16 = 170;

fn formats() -> Vec<(&'static str, PixelFormat)> {
    let rgb565 = PixelFormat {
        bits_per_pixel: 16,
        depth: 16,
        big_endian: false,
        true_colour: true,
        red_max: 31,
        green_max: 63,
        blue_max: 31,
        red_shift: 11,
        green_shift: 5,
        blue_shift: 0,
    };
    let bgr_high = PixelFormat { red_shift: 8, green_shift: 16, blue_shift: 24, ..PixelFormat::XRGB8888 };
    vec![
        ("xrgb8888", PixelFormat::XRGB8888),
        ("xrgb8888-be", PixelFormat { big_endian: true, ..PixelFormat::XRGB8888 }),
        ("bgr-high-bytes", bgr_high),
        ("bgr-high-bytes-be", PixelFormat { big_endian: true, ..bgr_high }),
        ("rgb565", rgb565),
        ("rgb565-be", PixelFormat { big_endian: true, ..rgb565 }),
        ("rgb555", PixelFormat { depth: 15, green_max: 31, red_shift: 10, ..rgb565 }),
        ("bgr233", PixelFormat::BGR233),
    ]
}

fn update(enc: &mut Encoders, e: Encoding, src: &Source<'_>, rects: &[Rect], tr: &Translator, opts: &TightOptions) -> Vec<u8> {
    let mut body = Vec::new();
    let mut n = 0;
    for r in rects {
        n += enc.encode(e, src, *r, tr, opts, &mut body);
    }
    let mut out = Vec::new();
    emit_update_header(&mut out, u16::try_from(n).unwrap());
    out.extend_from_slice(&body);
    out
}

fn check_lossless(e: Encoding, opts: TightOptions) {
    for (name, pf) in formats() {
        let tr = Translator::new(&pf);
        let mut enc = Encoders::new();
        let mut dec = Decoder::new(pf, usize::from(W), usize::from(H));
        let updates: [(u32, Vec<Rect>); 3] = [
            (0, vec![Rect::new(0, 0, W, H)]),
            (5, vec![Rect::new(10, 20, 64, 64), Rect::new(150, 85, 150, 85), Rect::new(0, 169, 1, 1)]),
            (9, vec![Rect::new(0, 0, W, H)]),
        ];
        for (frame, rects) in updates {
            let px = pattern::render(W, H, frame);
            let src = Source::new(&px, W, H, usize::from(W) * 4).unwrap();
            let bytes = update(&mut enc, e, &src, &rects, &tr, &opts);
            let mut s = bytes.as_slice();
            match dec.read_message(&mut s) {
                Ok(ServerMessage::Update(_)) => {}
                other => panic!("{name} {}: {other:?}", e.name()),
            }
            assert!(s.is_empty(), "{name} {}: {} bytes left", e.name(), s.len());
            for r in &rects {
                for y in r.y..r.y + r.h {
                    for x in r.x..r.x + r.w {
                        let want = tr.pixel(src.get(usize::from(x), usize::from(y)));
                        let got = dec.fb[usize::from(y) * usize::from(W) + usize::from(x)];
                        assert_eq!(got, want, "{name} {} frame {frame} at ({x},{y})", e.name());
                    }
                }
            }
        }
    }
}

#[test]
fn raw_is_exact_in_every_format() {
    check_lossless(Encoding::RAW, TightOptions::default());
}

#[test]
fn rre_is_exact_in_every_format() {
    check_lossless(Encoding::RRE, TightOptions::default());
}

#[test]
fn hextile_is_exact_in_every_format() {
    check_lossless(Encoding::HEXTILE, TightOptions::default());
}

#[test]
fn zrle_is_exact_in_every_format() {
    check_lossless(Encoding::ZRLE, TightOptions::default());
}

#[test]
fn tight_lossless_is_exact_in_every_format() {
    check_lossless(Encoding::TIGHT, TightOptions::default());
    check_lossless(Encoding::TIGHT, TightOptions { compress_level: 9, ..TightOptions::default() });
}

#[test]
fn tight_compression_level_change_resets_streams() {
    let pf = PixelFormat::XRGB8888;
    let tr = Translator::new(&pf);
    let mut enc = Encoders::new();
    let mut dec = Decoder::new(pf, usize::from(W), usize::from(H));
    let px = pattern::render(W, H, 1);
    let src = Source::new(&px, W, H, usize::from(W) * 4).unwrap();
    for level in [1u8, 1, 6, 0, 9] {
        let opts = TightOptions { compress_level: level, ..TightOptions::default() };
        let bytes = update(&mut enc, Encoding::TIGHT, &src, &[Rect::new(0, 0, W, H)], &tr, &opts);
        dec.read_message(&mut bytes.as_slice()).unwrap();
        assert!(dec.fb.iter().enumerate().all(|(i, &v)| v == tr.pixel(src.get(i % usize::from(W), i / usize::from(W)))));
    }
}

fn psnr(a: &[(u8, u8, u8)], b: &[(u8, u8, u8)]) -> f64 {
    let mut se = 0f64;
    for (p, q) in a.iter().zip(b) {
        for (x, y) in [(p.0, q.0), (p.1, q.1), (p.2, q.2)] {
            se += (f64::from(x) - f64::from(y)).powi(2);
        }
    }
    let mse = se / (a.len() * 3) as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

#[test]
fn tight_jpeg_is_close_and_smaller_at_lower_quality() {
    let pf = PixelFormat::XRGB8888;
    let tr = Translator::new(&pf);
    let px = pattern::render(W, H, 3);
    let src = Source::new(&px, W, H, usize::from(W) * 4).unwrap();
    let want: Vec<_> = (0..usize::from(H))
        .flat_map(|y| (0..usize::from(W)).map(move |x| (x, y)))
        .map(|(x, y)| {
            let v = src.get(x, y);
            let [b, g, r, _] = v.to_le_bytes();
            (r, g, b)
        })
        .collect();
    let mut sizes = Vec::new();
    for (level, min_psnr) in [(9u8, 35.0), (5, 19.0), (1, 15.0)] {
        let opts = TightOptions { quality_level: Some(level), ..TightOptions::default() };
        let mut enc = Encoders::new();
        let mut dec = Decoder::new(pf, usize::from(W), usize::from(H));
        let bytes = update(&mut enc, Encoding::TIGHT, &src, &[Rect::new(0, 0, W, H)], &tr, &opts);
        dec.read_message(&mut bytes.as_slice()).unwrap();
        let got: Vec<_> = (0..usize::from(H))
            .flat_map(|y| (0..usize::from(W)).map(move |x| (x, y)))
            .map(|(x, y)| dec.rgb(x, y))
            .collect();
        let p = psnr(&want, &got);
        assert!(p >= min_psnr, "quality {level}: PSNR {p:.1} dB < {min_psnr}");
        sizes.push(bytes.len());
    }
    assert!(sizes[0] > sizes[1] && sizes[1] > sizes[2], "sizes by quality 9, 5, 1: {sizes:?}");
}

#[test]
fn lossless_encoders_compress_the_pattern() {
    let pf = PixelFormat::XRGB8888;
    let tr = Translator::new(&pf);
    let px = pattern::render(W, H, 0);
    let src = Source::new(&px, W, H, usize::from(W) * 4).unwrap();
    let raw = usize::from(W) * usize::from(H) * 4;
    for e in [Encoding::ZRLE, Encoding::TIGHT, Encoding::HEXTILE] {
        let mut enc = Encoders::new();
        let n = update(&mut enc, e, &src, &[Rect::new(0, 0, W, H)], &tr, &TightOptions::default()).len();
        assert!(n < raw / 2, "{}: {n} bytes vs raw {raw}", e.name());
    }
}
