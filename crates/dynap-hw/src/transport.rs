//! The device interface: what a user does with a board, at the level samna exposes (not USB).

use crate::error::HwError;
use crate::event::Event;
use dynap_config::Configuration;

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
