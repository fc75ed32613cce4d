//! # dynap-hw
//!
//! Devices: a transport abstraction, the chip emulator (a digital twin with its own mismatch), USB discovery and identification with nusb, the samna bridge, the event codec and timing.
//!
//! **Status: not built yet.** This crate holds only its documentation until issue 7 (devices and deployment) lands; it exports
//! nothing, so nothing can pretend to work.
//!
//! Invariants it will keep:
//! * nusb is sealed here.
//! * No pretend protocol: the vendor's USB protocol is not public, so the USB layer finds, identifies and claims boards and says what it cannot do; data moves through the emulator and the samna bridge.
//! * A crash or fault never leaves a half-written output; timeouts never hang.
