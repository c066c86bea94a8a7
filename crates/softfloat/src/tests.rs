//! Hand-written edge cases.
