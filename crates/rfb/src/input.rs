//! Viewer input to the machine's input events: X keysyms (US layout) and QEMU extended-key XT
//! scancodes to Linux input key codes, and RFB pointer button masks to press/release transitions.
//!
//! One [`InputMapper`] per viewer keeps that viewer's button and shift state; the server then puts
//! every viewer's events into one queue, so the machine sees a single serial stream.

use doppel_machine::InputEvent;

/// Linux input event codes used here (`linux/input-event-codes.h`).
pub mod code {
    pub const KEY_LEFTSHIFT: u16 = 42;
    pub const BTN_LEFT: u16 = 0x110;
    pub const BTN_RIGHT: u16 = 0x111;
    pub const BTN_MIDDLE: u16 = 0x112;
}

/// Linux key codes for US-layout characters 0x20..=0x7e: (code, shift needed).
const ASCII: [(u16, bool); 95] = [
    (57, false), // space
    (2, true),   // !
    (40, true),  // "
    (4, true),   // #
    (5, true),   // $
    (6, true),   // %
    (8, true),   // &
    (40, false), // '
    (10, true),  // (
    (11, true),  // )
    (9, true),   // *
    (13, true),  // +
    (51, false), // ,
    (12, false), // -
    (52, false), // .
    (53, false), // /
    (11, false), // 0
    (2, false),  // 1
    (3, false),
    (4, false),
    (5, false),
    (6, false),
    (7, false),
    (8, false),
    (9, false),
    (10, false), // 9
    (39, true),  // :
    (39, false), // ;
    (51, true),  // <
    (13, false), // =
    (52, true),  // >
    (53, true),  // ?
    (3, true),   // @
    (30, true),  // A
    (48, true),
    (46, true),
    (32, true),
    (18, true),
    (33, true),
    (34, true),
    (35, true),
    (23, true),
    (36, true),
    (37, true),
    (38, true),
    (50, true),
    (49, true),
    (24, true),
    (25, true),
    (16, true),
    (19, true),
    (31, true),
    (20, true),
    (22, true),
    (47, true),
    (17, true),
    (45, true),
    (21, true),
    (44, true),  // Z
    (26, false), // [
    (43, false), // backslash
    (27, false), // ]
    (7, true),   // ^
    (12, true),  // _
    (41, false), // `
    (30, false), // a
    (48, false),
    (46, false),
    (32, false),
    (18, false),
    (33, false),
    (34, false),
    (35, false),
    (23, false),
    (36, false),
    (37, false),
    (38, false),
    (50, false),
    (49, false),
    (24, false),
    (25, false),
    (16, false),
    (19, false),
    (31, false),
    (20, false),
    (22, false),
    (47, false),
    (17, false),
    (45, false),
    (21, false),
    (44, false), // z
    (26, true),  // {
    (43, true),  // |
    (27, true),  // }
    (41, true),  // ~
];

/// The Linux key code for an X keysym, and whether the character needs Shift on a US keyboard.
pub fn keysym_to_linux(keysym: u32) -> Option<(u16, bool)> {
    if (0x20..=0x7e).contains(&keysym) {
        return ASCII.get(usize::try_from(keysym - 0x20).ok()?).copied();
    }
    let code = match keysym {
        0xff08 => 14,          // BackSpace
        0xff09 | 0xfe20 => 15, // Tab, ISO_Left_Tab
        0xff0d => 28,          // Return
        0xff13 => 119,         // Pause
        0xff14 => 70,          // Scroll_Lock
        0xff15 => 99,          // Sys_Req
        0xff1b => 1,           // Escape
        0xff50 => 102,         // Home
        0xff51 => 105,         // Left
        0xff52 => 103,         // Up
        0xff53 => 106,         // Right
        0xff54 => 108,         // Down
        0xff55 => 104,         // Page_Up
        0xff56 => 109,         // Page_Down
        0xff57 => 107,         // End
        0xff61 => 99,          // Print
        0xff63 => 110,         // Insert
        0xff67 => 127,         // Menu (KEY_COMPOSE)
        0xff7f => 69,          // Num_Lock
        0xff8d => 96,          // KP_Enter
        0xff95 | 0xffb7 => 71, // KP_Home, KP_7
        0xff97 | 0xffb8 => 72, // KP_Up, KP_8
        0xff9a | 0xffb9 => 73, // KP_Prior, KP_9
        0xff96 | 0xffb4 => 75, // KP_Left, KP_4
        0xff9d | 0xffb5 => 76, // KP_Begin, KP_5
        0xff98 | 0xffb6 => 77, // KP_Right, KP_6
        0xff9c | 0xffb1 => 79, // KP_End, KP_1
        0xff99 | 0xffb2 => 80, // KP_Down, KP_2
        0xff9b | 0xffb3 => 81, // KP_Next, KP_3
        0xff9e | 0xffb0 => 82, // KP_Insert, KP_0
        0xff9f | 0xffae => 83, // KP_Delete, KP_Decimal
        0xffaa => 55,          // KP_Multiply
        0xffab => 78,          // KP_Add
        0xffad => 74,          // KP_Subtract
        0xffaf => 98,          // KP_Divide
        0xffbd => 117,         // KP_Equal
        k @ 0xffbe..=0xffc7 => 59 + u16::try_from(k - 0xffbe).ok()?, // F1..F10
        0xffc8 => 87,          // F11
        0xffc9 => 88,          // F12
        0xffe1 => 42,          // Shift_L
        0xffe2 => 54,          // Shift_R
        0xffe3 => 29,          // Control_L
        0xffe4 => 97,          // Control_R
        0xffe5 => 58,          // Caps_Lock
        0xffe7 | 0xffeb => 125, // Meta_L, Super_L
        0xffe8 | 0xffec => 126, // Meta_R, Super_R
        0xffe9 => 56,          // Alt_L
        0xffea | 0xfe03 => 100, // Alt_R, ISO_Level3_Shift (AltGr)
        0xffff => 111,         // Delete
        _ => return None,
    };
    Some((code, false))
}

/// The Linux key code for an XT (set 1) scancode as QEMU's extended key event carries it:
/// plain codes as is, 0xE0-prefixed codes with bit 7 set (0xE0 0x48 is 0xC8).
pub fn xt_to_linux(scancode: u32) -> Option<u16> {
    let code = match scancode {
        0x54 => 99, // Alt+SysRq
        c @ 0x01..=0x58 => u16::try_from(c).ok()?,
        0x9c => 96,  // KP_Enter
        0x9d => 97,  // RightCtrl
        0xb5 => 98,  // KP_Divide
        0xb7 => 99,  // PrintScreen
        0xb8 => 100, // RightAlt
        0xc6 => 119, // Pause (Ctrl+Break form)
        0xc7 => 102, // Home
        0xc8 => 103, // Up
        0xc9 => 104, // PageUp
        0xcb => 105, // Left
        0xcd => 106, // Right
        0xcf => 107, // End
        0xd0 => 108, // Down
        0xd1 => 109, // PageDown
        0xd2 => 110, // Insert
        0xd3 => 111, // Delete
        0xdb => 125, // LeftMeta
        0xdc => 126, // RightMeta
        0xdd => 127, // Compose (Menu)
        _ => return None,
    };
    Some(code)
}

/// One viewer's input state.
#[derive(Debug, Default, Clone)]
pub struct InputMapper {
    buttons: u8,
    pos: Option<(u16, u16)>,
    shift_down: bool,
}

impl InputMapper {
    pub fn new() -> InputMapper {
        InputMapper::default()
    }

    /// A KeyEvent. A character that needs Shift while the viewer holds none (some clients send
    /// 'A' without Shift) is wrapped in a Shift press and release. Unknown keysyms give nothing.
    pub fn key(&mut self, keysym: u32, down: bool, out: &mut Vec<InputEvent>) {
        let Some((code, shift)) = keysym_to_linux(keysym) else {
            tracing::debug!(keysym, "no key code for keysym");
            return;
        };
        if code == code::KEY_LEFTSHIFT || code == 54 {
            self.shift_down = down;
        }
        if down && shift && !self.shift_down {
            out.push(InputEvent::Key { code: code::KEY_LEFTSHIFT, down: true });
            out.push(InputEvent::Key { code, down: true });
            out.push(InputEvent::Key { code: code::KEY_LEFTSHIFT, down: false });
            return;
        }
        out.push(InputEvent::Key { code, down });
    }

    /// A QEMU extended key event: the scancode decides; the keysym is used only if the scancode
    /// is unknown (some clients send 0).
    pub fn ext_key(&mut self, keysym: u32, scancode: u32, down: bool, out: &mut Vec<InputEvent>) {
        match xt_to_linux(scancode) {
            Some(code) => out.push(InputEvent::Key { code, down }),
            None => self.key(keysym, down, out),
        }
    }

    /// A PointerEvent: a move if the position changed, then a press or release per changed
    /// button (bits 0, 1, 2: left, middle, right), and a wheel detent per press of bits 3 (up)
    /// and 4 (down).
    pub fn pointer(&mut self, buttons: u8, x: u16, y: u16, out: &mut Vec<InputEvent>) {
        if self.pos != Some((x, y)) {
            self.pos = Some((x, y));
            out.push(InputEvent::PointerMove { x: u32::from(x), y: u32::from(y) });
        }
        let changed = buttons ^ self.buttons;
        for (bit, code) in [(0, code::BTN_LEFT), (1, code::BTN_MIDDLE), (2, code::BTN_RIGHT)] {
            if changed & (1 << bit) != 0 {
                out.push(InputEvent::PointerButton { code, down: buttons & (1 << bit) != 0 });
            }
        }
        for (bit, delta) in [(3, 1), (4, -1)] {
            if changed & buttons & (1 << bit) != 0 {
                out.push(InputEvent::Wheel { delta });
            }
        }
        self.buttons = buttons;
    }

    /// Releases whatever this viewer still holds (when it disconnects).
    pub fn release_all(&mut self, out: &mut Vec<InputEvent>) {
        let b = self.buttons & 0b111;
        if let Some((x, y)) = self.pos {
            self.pointer(self.buttons & !b, x, y, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_and_specials() {
        assert_eq!(keysym_to_linux(u32::from(b'a')), Some((30, false)));
        assert_eq!(keysym_to_linux(u32::from(b'Q')), Some((16, true)));
        assert_eq!(keysym_to_linux(u32::from(b'0')), Some((11, false)));
        assert_eq!(keysym_to_linux(u32::from(b'@')), Some((3, true)));
        assert_eq!(keysym_to_linux(u32::from(b'~')), Some((41, true)));
        assert_eq!(keysym_to_linux(0xff0d), Some((28, false)));
        assert_eq!(keysym_to_linux(0xffbe), Some((59, false)));
        assert_eq!(keysym_to_linux(0xffc7), Some((68, false)));
        assert_eq!(keysym_to_linux(0xffc9), Some((88, false)));
        assert_eq!(keysym_to_linux(0x20ac), None);
        // Every printable ASCII keysym maps, and letters agree across cases.
        for c in b'a'..=b'z' {
            let (lo, s1) = keysym_to_linux(u32::from(c)).unwrap();
            let (hi, s2) = keysym_to_linux(u32::from(c.to_ascii_uppercase())).unwrap();
            assert_eq!((lo, s1, s2), (hi, false, true));
        }
    }

    #[test]
    fn xt_scancodes() {
        assert_eq!(xt_to_linux(0x1e), Some(30)); // A
        assert_eq!(xt_to_linux(0x1c), Some(28)); // Enter
        assert_eq!(xt_to_linux(0x9c), Some(96)); // KP Enter
        assert_eq!(xt_to_linux(0xc8), Some(103)); // Up
        assert_eq!(xt_to_linux(0x00), None);
        assert_eq!(xt_to_linux(0x1_0000), None);
    }

    #[test]
    fn shift_is_added_only_when_missing() {
        let mut m = InputMapper::new();
        let mut out = Vec::new();
        m.key(u32::from(b'A'), true, &mut out);
        m.key(u32::from(b'A'), false, &mut out);
        assert_eq!(
            out,
            [
                InputEvent::Key { code: 42, down: true },
                InputEvent::Key { code: 30, down: true },
                InputEvent::Key { code: 42, down: false },
                InputEvent::Key { code: 30, down: false },
            ]
        );
        out.clear();
        m.key(0xffe1, true, &mut out);
        m.key(u32::from(b'A'), true, &mut out);
        assert_eq!(out, [InputEvent::Key { code: 42, down: true }, InputEvent::Key { code: 30, down: true }]);
    }

    #[test]
    fn pointer_transitions() {
        let mut m = InputMapper::new();
        let mut out = Vec::new();
        m.pointer(0, 10, 20, &mut out);
        m.pointer(1, 10, 20, &mut out);
        m.pointer(0b101, 11, 20, &mut out);
        m.pointer(0, 11, 20, &mut out);
        m.pointer(0b1000, 11, 20, &mut out);
        m.pointer(0, 11, 20, &mut out);
        m.pointer(0b10000, 11, 20, &mut out);
        assert_eq!(
            out,
            [
                InputEvent::PointerMove { x: 10, y: 20 },
                InputEvent::PointerButton { code: 0x110, down: true },
                InputEvent::PointerMove { x: 11, y: 20 },
                InputEvent::PointerButton { code: 0x111, down: true },
                InputEvent::PointerButton { code: 0x110, down: false },
                InputEvent::PointerButton { code: 0x111, down: false },
                InputEvent::Wheel { delta: 1 },
                InputEvent::Wheel { delta: -1 },
            ]
        );
        out.clear();
        m.pointer(1, 11, 20, &mut out);
        out.clear();
        m.release_all(&mut out);
        assert_eq!(out, [InputEvent::PointerButton { code: 0x110, down: false }]);
    }
}
