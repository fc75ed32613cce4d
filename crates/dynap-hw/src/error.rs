//! What can go wrong with a device, as data (after nusb's `Error`): an [`HwError`] has a small
//! [`ErrorKind`] a caller decides on, and the [`HwProblem`] that happened, with the device, the event,
//! the neuron or the limit it concerns. Text is kept only where it comes from outside: what the OS,
//! nusb, samna or the bridge process reported.

use crate::event::CodecError;
use crate::usb::UsbBoard;
use dynap_config::{NeuronPlace, Violation};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The kind of a device failure: what a caller decides on (retry, tell the user, give up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No device answers: absent, unplugged in the middle of a run, the bridge not started or exited.
    Disconnected,
    /// The device refused the configuration or the request.
    Refused,
    /// The device did not answer in time.
    Timeout,
    /// This transport or this environment cannot do that (the problem says what to use instead).
    Unsupported,
    /// The device sent something outside the protocol (a malformed event, an oversized reply).
    Protocol,
    /// The caller's request is malformed (a raster that is not spike counts or not of its size).
    InvalidInput,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Disconnected => "device gone",
            ErrorKind::Refused => "refused",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unsupported => "not supported",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::InvalidInput => "invalid input",
        })
    }
}

/// How the samna bridge stopped answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BridgeEnd {
    /// A request could not be written to it: it is not running.
    NotRunning,
    /// It closed its output.
    ClosedOutput,
    /// It stopped in the middle of a reply.
    StoppedInReply,
    /// It exited.
    Exited,
}

impl fmt::Display for BridgeEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BridgeEnd::NotRunning => "the samna bridge is not running",
            BridgeEnd::ClosedOutput => "the bridge closed its output",
            BridgeEnd::StoppedInReply => "the bridge stopped in the middle of a reply",
            BridgeEnd::Exited => "the samna bridge exited",
        })
    }
}

/// What happened, with its data. Each problem has one [`ErrorKind`] ([`HwProblem::kind`]).
#[derive(Clone, Debug, PartialEq)]
pub enum HwProblem {
    /// The bridge program could not be written to a temporary file (disconnected).
    BridgeNotWritten {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: String,
    },
    /// The Python for the bridge could not be started (disconnected).
    BridgeNotStarted {
        /// The Python.
        python: PathBuf,
        /// What the OS said.
        error: String,
    },
    /// The bridge stopped answering (disconnected).
    BridgeEnded {
        /// How.
        end: BridgeEnd,
        /// The last lines it wrote to stderr (at most 3).
        stderr: Vec<String>,
    },
    /// The bridge announced a reply longer than 1 GiB (protocol).
    ReplyTooLong {
        /// The announced length.
        bytes: usize,
    },
    /// The bridge sent an event that does not decode (protocol).
    MalformedEvent(CodecError),
    /// The Python running the bridge cannot import samna (unsupported).
    NoSamna {
        /// The import error, as Python reported it.
        message: String,
    },
    /// samna or the bridge refused a request (refused).
    BridgeRefused {
        /// The exception, as the bridge reported it.
        message: String,
    },
    /// The bridge did not answer within its timeout; it was stopped (timeout).
    BridgeTimeout {
        /// The timeout.
        timeout: Duration,
    },
    /// The control event probing the clock did not come back (timeout).
    ClockProbe {
        /// Reads tried.
        reads: usize,
    },
    /// The USB devices cannot be listed (unsupported).
    UsbListing {
        /// What nusb said.
        error: String,
    },
    /// No USB device with these ids (disconnected).
    NoUsbBoard {
        /// The vendor id looked for.
        vendor_id: u16,
        /// The product id looked for, if any.
        product_id: Option<u16>,
    },
    /// The board cannot be opened (refused).
    UsbOpen {
        /// The board.
        board: UsbBoard,
        /// What nusb said.
        error: String,
    },
    /// The board's interface 0 cannot be claimed (refused).
    UsbClaim {
        /// The board.
        board: UsbBoard,
        /// What nusb said.
        error: String,
    },
    /// The board is there, but driving it needs the vendor's protocol, which is not public
    /// (unsupported).
    VendorProtocol {
        /// The board.
        board: UsbBoard,
    },
    /// The configuration breaks hardware rules (refused).
    RulesBroken {
        /// Every violation, in [`dynap_config::validate()`]'s order.
        violations: Vec<Violation>,
    },
    /// A neuron reaches another through two CAM entries of different synapse types, which the
    /// emulator cannot simulate (refused).
    MixedSynapseTypes {
        /// The sending neuron.
        pre: NeuronPlace,
        /// The receiving neuron.
        post: NeuronPlace,
    },
    /// An event so far ahead of the emulator's clock that it would simulate more steps at once than
    /// it does (refused).
    TooFarAhead {
        /// Steps to simulate.
        steps: u64,
        /// Steps it simulates at most.
        limit: u64,
    },
    /// The emulator's network is refused by the model (refused).
    Model(dynap_model::Error),
    /// A raster not of `steps * channels` values (invalid input).
    RasterSize {
        /// Values given.
        values: usize,
        /// Steps.
        steps: usize,
        /// The mapping's input channels.
        channels: usize,
    },
    /// A step of 0 µs (invalid input).
    ZeroStep,
    /// A raster value that is not a spike count: a whole number, at most one event per µs of a
    /// step (invalid input).
    NotASpikeCount {
        /// The step.
        step: usize,
        /// The channel.
        channel: usize,
        /// The value.
        value: f64,
    },
    /// More input events in one step than microseconds in it (invalid input).
    TooManyEvents {
        /// The step.
        step: usize,
        /// The step's length (µs), the most events it can hold.
        step_us: u32,
    },
    /// A core to calibrate that no board has (`chip * 4 + core` of at most 16 cores) or listed twice
    /// (invalid input).
    BadCore {
        /// The core as given.
        core: usize,
        /// Why it is refused.
        why: &'static str,
    },
    /// The calibration's probe configuration cannot be made (refused): for example a user's bias
    /// table that cannot make a probe current.
    ProbeNotMapped {
        /// The probe.
        probe: String,
        /// The mapper's reason.
        error: String,
    },
    /// The end-of-stimulus marker did not come back (timeout).
    NoEndMarker {
        /// Reads tried.
        reads: usize,
        /// The device ([`crate::Transport::name`]).
        device: String,
    },
}

/// The udev rule that gives a Linux user access to the board.
const PERMISSION: &str = "on Linux, add the udev rule SUBSYSTEM==\"usb\", ATTRS{idVendor}==\"151f\", MODE=\"0666\" and replug the board";

impl HwProblem {
    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HwProblem::BridgeNotWritten { .. }
            | HwProblem::BridgeNotStarted { .. }
            | HwProblem::BridgeEnded { .. }
            | HwProblem::NoUsbBoard { .. } => ErrorKind::Disconnected,
            HwProblem::BridgeRefused { .. }
            | HwProblem::UsbOpen { .. }
            | HwProblem::UsbClaim { .. }
            | HwProblem::RulesBroken { .. }
            | HwProblem::MixedSynapseTypes { .. }
            | HwProblem::TooFarAhead { .. }
            | HwProblem::Model(_)
            | HwProblem::ProbeNotMapped { .. } => ErrorKind::Refused,
            HwProblem::BridgeTimeout { .. }
            | HwProblem::ClockProbe { .. }
            | HwProblem::NoEndMarker { .. } => ErrorKind::Timeout,
            HwProblem::NoSamna { .. }
            | HwProblem::UsbListing { .. }
            | HwProblem::VendorProtocol { .. } => ErrorKind::Unsupported,
            HwProblem::ReplyTooLong { .. } | HwProblem::MalformedEvent(_) => ErrorKind::Protocol,
            HwProblem::RasterSize { .. }
            | HwProblem::ZeroStep
            | HwProblem::NotASpikeCount { .. }
            | HwProblem::TooManyEvents { .. }
            | HwProblem::BadCore { .. } => ErrorKind::InvalidInput,
        }
    }
}

impl fmt::Display for HwProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place =
            |p: &NeuronPlace| format!("chip {} core {} neuron {}", p.chip, p.core, p.neuron);
        match self {
            HwProblem::BridgeNotWritten { path, error } => {
                write!(f, "cannot write the bridge to {}: {error}", path.display())
            }
            HwProblem::BridgeNotStarted { python, error } => {
                write!(f, "cannot start {}: {error}", python.display())
            }
            HwProblem::BridgeEnded { end, stderr } => {
                write!(f, "{end}")?;
                if !stderr.is_empty() {
                    write!(f, " (stderr: {})", stderr.join(" | "))?;
                }
                Ok(())
            }
            HwProblem::ReplyTooLong { bytes } => {
                write!(f, "the bridge announced a reply of {bytes} bytes")
            }
            HwProblem::MalformedEvent(e) => write!(f, "the bridge sent a malformed event: {e}"),
            HwProblem::NoSamna { message } => write!(
                f,
                "{message}: the Python running the bridge has no samna (install the vendor's samna package, or give the Python that has it)"
            ),
            HwProblem::BridgeRefused { message } => f.write_str(message),
            HwProblem::BridgeTimeout { timeout } => write!(
                f,
                "the samna bridge did not answer within {timeout:?}; it was stopped"
            ),
            HwProblem::ClockProbe { reads } => {
                write!(f, "the clock probe did not come back after {reads} reads")
            }
            HwProblem::UsbListing { error } => write!(
                f,
                "cannot list USB devices ({error}); is there a USB subsystem (e.g. /sys/bus/usb on Linux) in this environment?"
            ),
            HwProblem::NoUsbBoard {
                vendor_id,
                product_id,
            } => {
                write!(f, "no USB device with vendor id {vendor_id:04x}")?;
                if let Some(p) = product_id {
                    write!(f, " and product id {p:04x}")?;
                }
                write!(
                    f,
                    " (is the board plugged in and powered? on Linux, without permission the device may be invisible or unopenable: add the udev rule SUBSYSTEM==\"usb\", ATTRS{{idVendor}}==\"151f\", MODE=\"0666\")"
                )
            }
            HwProblem::UsbOpen { board, error } => {
                write!(f, "cannot open {board}: {error} ({PERMISSION})")
            }
            HwProblem::UsbClaim { board, error } => write!(
                f,
                "cannot claim interface 0 of {board}: {error} (another program, e.g. samna, may hold it; {PERMISSION})"
            ),
            HwProblem::VendorProtocol { board } => write!(
                f,
                "found, opened and claimed {board}, but configuring a DYNAP-SE2 board needs the vendor's protocol (Opal Kelly FrontPanel \
                 and the Dynapse2Stack bitstream's endpoints), which is not public; run with --device samna to drive \
                 it through the samna bridge on a machine with samna installed"
            ),
            HwProblem::RulesBroken { violations } => match violations.first() {
                Some(v) => write!(
                    f,
                    "the configuration breaks {} hardware rule(s), first: {v}",
                    violations.len()
                ),
                None => write!(f, "the configuration breaks hardware rules"),
            },
            HwProblem::MixedSynapseTypes { pre, post } => write!(
                f,
                "{} reaches {} through two CAM entries of different synapse types; the twin simulates one type per connection",
                place(pre),
                place(post)
            ),
            HwProblem::TooFarAhead { steps, limit } => write!(
                f,
                "an event {steps} steps ahead of the clock; the twin does not simulate more than {limit} steps at once"
            ),
            HwProblem::Model(e) => write!(f, "{e}"),
            HwProblem::RasterSize {
                values,
                steps,
                channels,
            } => write!(
                f,
                "the raster holds {values} values; {steps} steps x {channels} channels need {}",
                steps * channels
            ),
            HwProblem::ZeroStep => write!(f, "a step of 0 µs"),
            HwProblem::NotASpikeCount {
                step,
                channel,
                value,
            } => write!(
                f,
                "raster step {step}, channel {channel}: {value} is not a spike count (a whole number, at most one event per µs of a step)"
            ),
            HwProblem::TooManyEvents { step, step_us } => write!(
                f,
                "step {step} has more than {step_us} input events: they cannot be told apart within one step of {step_us} µs"
            ),
            HwProblem::BadCore { core, why } => write!(f, "core {core}: {why}"),
            HwProblem::ProbeNotMapped { probe, error } => {
                write!(f, "the {probe} probe cannot be configured: {error}")
            }
            HwProblem::NoEndMarker { reads, device } => write!(
                f,
                "the end-of-stimulus marker did not come back after {reads} reads ({device})"
            ),
        }
    }
}

/// A device failure: its [`ErrorKind`] and what happened ([`HwProblem`]). One pointer wide, so a
/// `Result` carrying it stays small.
#[derive(Clone, Debug, PartialEq)]
pub struct HwError {
    problem: Box<HwProblem>,
}

impl HwError {
    /// The kind, for a caller that decides what to do next.
    pub fn kind(&self) -> ErrorKind {
        self.problem.kind()
    }

    /// What happened, with its data.
    pub fn problem(&self) -> &HwProblem {
        &self.problem
    }
}

impl From<HwProblem> for HwError {
    fn from(problem: HwProblem) -> HwError {
        HwError {
            problem: Box::new(problem),
        }
    }
}

impl fmt::Display for HwError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.problem)
    }
}

impl std::error::Error for HwError {}
