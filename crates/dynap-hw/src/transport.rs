//! The device interface: what a user does with a board, at the level samna exposes (not USB).

use crate::event::Event;
use dynap_config::Configuration;
use std::fmt;

/// What can go wrong with a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HwError {
    /// No device answers (absent, unplugged in the middle of a run, bridge exited).
    Gone(String),
    /// The device refused the configuration or the request.
    Refused(String),
    /// The device did not answer in time.
    Timeout(String),
    /// This transport cannot do that (the reason says why and what to use instead).
    Unsupported(String),
}

impl fmt::Display for HwError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HwError::Gone(s) => write!(f, "device gone: {s}"),
            HwError::Refused(s) => write!(f, "refused: {s}"),
            HwError::Timeout(s) => write!(f, "timeout: {s}"),
            HwError::Unsupported(s) => write!(f, "not supported: {s}"),
        }
    }
}

impl std::error::Error for HwError {}

/// A device a configuration is applied to and events are exchanged with. Timestamps are microseconds on
/// the device's 32-bit clock; input events are held by the device until their time.
pub trait Transport {
    /// A description for messages (`emulator (mismatch 10 %, seed 0)`).
    fn name(&self) -> String;
    /// Clears the neurons' state and pending events (the configuration stays).
    fn reset(&mut self) -> Result<(), HwError>;
    /// Applies a whole configuration; refused with a reason if the device cannot take it.
    fn apply(&mut self, config: &Configuration) -> Result<(), HwError>;
    /// Queues input events, to be delivered at their timestamps.
    fn write_events(&mut self, events: &[Event]) -> Result<(), HwError>;
    /// The output events produced so far (spikes sent to the host, control events coming back).
    fn read_events(&mut self) -> Result<Vec<Event>, HwError>;
    /// The device clock (µs, wraps at 2^32).
    fn time_us(&mut self) -> Result<u32, HwError>;
}
