//! Open H.264 (encoding 50, rfbproto "Open H.264 Encoding"), as noVNC 1.6+ decodes it.
//!
//! A rectangle carries `u32 length`, `u32 flags` (bit 0: reset this rectangle's decoder context,
//! bit 1: reset every context) and `length` bytes of Annex B H.264 (start codes, SPS and PPS
//! before each IDR). The viewer keeps one decoder context per rectangle geometry, so the server
//! keeps one encoder per geometry too: here exactly one, for the rectangle in use; a new geometry
//! replaces it, starts with an IDR and tells the viewer to reset the context.
//!
//! The stream is constrained baseline (OpenH264's only profile for encoding: profile_idc 66
//! with constraint_set1), screen-content tuned, quantiser range from the Tight quality level.

use openh264::encoder::{
    Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, QpRange, RateControlMode, UsageType,
};
use openh264::formats::{BgraSliceU8, YUVBuffer};
use openh264::OpenH264API;

use crate::pixel::Source;
use crate::wire::{emit_rect_header, Encoding, Rect};

/// Flags word of an H.264 rectangle.
pub const RESET_CONTEXT: u32 = 1;
pub const RESET_ALL_CONTEXTS: u32 = 2;

/// The quantiser range for a Tight quality level (0..=9; `None` means the default, 6).
pub fn qp_range(quality: Option<u8>) -> (u8, u8) {
    let q = quality.unwrap_or(6).min(9);
    let max = 42 - 2 * q;
    (max.saturating_sub(10), max)
}

pub(crate) struct H264State {
    enc: Option<(Rect, (u8, u8), Encoder)>,
    bgra: Vec<u8>,
    /// Frames encoded (for meters and tests).
    pub frames: u64,
}

impl std::fmt::Debug for H264State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264State").field("rect", &self.enc.as_ref().map(|e| e.0)).field("frames", &self.frames).finish()
    }
}

impl H264State {
    pub(crate) fn new() -> H264State {
        H264State { enc: None, bgra: Vec::new(), frames: 0 }
    }

    /// Whether `rect` can be sent as H.264 (even, non-trivial size).
    pub fn fits(rect: Rect) -> bool {
        rect.w >= 16 && rect.h >= 16 && rect.w.is_multiple_of(2) && rect.h.is_multiple_of(2)
    }

    /// Encodes `rect` of `src` as one H.264 rectangle. `None` if the encoder failed (the caller
    /// falls back to another encoding); the encoder is then dropped, so the next frame starts a
    /// fresh context.
    pub(crate) fn encode(&mut self, src: &Source<'_>, rect: Rect, quality: Option<u8>, out: &mut Vec<u8>) -> Option<usize> {
        if !Self::fits(rect) {
            return None;
        }
        let qp = qp_range(quality);
        let mut flags = 0;
        if self.enc.as_ref().is_none_or(|(r, q, _)| *r != rect || *q != qp) {
            let area = u32::from(rect.w) * u32::from(rect.h);
            let config = EncoderConfig::new()
                .usage_type(UsageType::ScreenContentRealTime)
                .rate_control_mode(RateControlMode::Quality)
                .bitrate(openh264::encoder::BitRate::from_bps(area.saturating_mul(8).max(500_000)))
                .max_frame_rate(FrameRate::from_hz(30.0))
                .skip_frames(false)
                .complexity(Complexity::Low)
                .qp(QpRange::new(qp.0, qp.1))
                .intra_frame_period(IntraFramePeriod::from_num_frames(0));
            let enc = Encoder::with_api_config(OpenH264API::from_source(), config).ok()?;
            self.enc = Some((rect, qp, enc));
            flags = RESET_CONTEXT;
        }
        let (x, y, w, h) = (usize::from(rect.x), usize::from(rect.y), usize::from(rect.w), usize::from(rect.h));
        self.bgra.clear();
        for yy in y..y + h {
            self.bgra.extend_from_slice(src.row(x, yy, w));
        }
        if self.bgra.len() != w * h * 4 {
            return None;
        }
        let yuv = YUVBuffer::from_rgb_source(BgraSliceU8::new(&self.bgra, (w, h)));
        let (_, _, enc) = self.enc.as_mut()?;
        let data = match enc.encode(&yuv) {
            Ok(bits) => bits.to_vec(),
            Err(e) => {
                tracing::warn!(error = %e, "H.264 encoder failed; falling back");
                self.enc = None;
                return None;
            }
        };
        let len = u32::try_from(data.len()).ok()?;
        emit_rect_header(out, rect, Encoding::H264);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&data);
        self.frames += 1;
        Some(1)
    }
}
