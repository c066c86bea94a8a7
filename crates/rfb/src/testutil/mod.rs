//! Test helpers exported behind the `test-utils` feature: an independent client-side decoder for
//! every encoding the server emits, and a deterministic test pattern.

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // test code: values are range-checked by construction

pub mod decoder;
pub mod fuzzing;
