//! The RFB (VNC) display server: a sans-IO protocol engine, encoders, and a tokio adapter.
