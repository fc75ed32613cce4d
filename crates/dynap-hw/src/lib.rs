//! # dynap-hw: devices
//!
//! Apply a configuration to the digital twin and play input spikes through it:
//!
//! ```
//! use dynap_config::{MapOptions, map};
//! use dynap_hw::{Emulator, EmulatorOptions, PlayOptions, Transport, play};
//! use dynap_model::{NeuronParams, QuantMatrix, QuantizedWeights, Variant, WeightMatrix};
//!
//! let w_in = QuantMatrix::new(WeightMatrix::Input, 1, 1, vec![15], vec![1])?;
//! let weights = QuantizedWeights::new(vec![0], vec![[2e-8; 4]], Some(w_in), QuantMatrix::zeros(1, 1), 1e-8)?;
//! let mapped = map(&weights, &NeuronParams::defaults(1), 1e-3, Variant::Rockpool, &MapOptions::default())
//!     .map_err(|e| e.to_string())?;
//! let mut twin = Emulator::new(EmulatorOptions { mismatch: 0.1, seed: 3, ..EmulatorOptions::default() });
//! twin.apply(&mapped.config)?;
//! let input: Vec<f64> = (0..50).map(|t| f64::from(u8::from(t % 2 == 0))).collect(); // [steps, channels]
//! let out = play(&mut twin, &mapped.mapping, &input, 50, &PlayOptions::default())?;
//! assert!(out.raster.iter().sum::<f64>() > 0.0, "the neuron answers");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The device interface ([`Transport`]), the chip emulator ([`Emulator`], a digital twin of a board
//! with its own frozen mismatch), the samna bridge ([`SamnaBridge`]: our Python program that drives a
//! real board through the vendor's samna package), USB discovery of boards with nusb
//! ([`list_boards`]), and the event wire format ([`encode`], [`decode`]).
//!
//! Hardware honesty: the DYNAP-SE2 board is an Opal Kelly FPGA module (USB vendor id 0x151F) whose
//! protocol only the vendor's samna software speaks, and it is not public. The USB layer therefore
//! finds and identifies boards and says exactly that; no pretend protocol is implemented. Data moves
//! through the emulator, and to real boards through samna with the bridge.
//!
//! Invariants of this crate:
//! * nusb is sealed here: no nusb type in a public signature;
//! * the emulator is deterministic for a seed; with its mismatch off it runs exactly the network the
//!   configuration describes (the reverse-mapped simulation, spike for spike);
//! * timestamps are the board's: microseconds on a 32-bit clock that wraps; nothing waits without a
//!   bound;
//! * failures are data ([`HwError`]: an [`ErrorKind`] to decide on and the [`HwProblem`] with its
//!   device, event, neuron or limit); text only where it comes from outside (the OS, nusb, samna).

mod bridge;
mod calibrate;
mod emulator;
mod error;
mod event;
mod host;
mod transport;
mod usb;

pub use bridge::{BRIDGE_SCRIPT, BridgeOptions, SamnaBridge};
pub use calibrate::{CalibrateOptions, Calibration, Prediction, calibrate, predict_held_out};
pub use emulator::{Emulator, EmulatorOptions, describe, slot};
pub use error::{BridgeEnd, ErrorKind, HwError, HwProblem};
pub use event::{
    CodecError, CodecProblem, EVENT_BYTES, Event, HopField, decode, encode, unwrap_time,
};
pub use host::{
    PlayOptions, Played, PlayedSpikes, control_event, monitor_place, play, play_spikes,
};
pub use transport::Transport;
pub use usb::{OPAL_KELLY_VID, UsbBoard, list_boards, open_and_claim, usb_transport};

#[cfg(test)]
mod tests;
