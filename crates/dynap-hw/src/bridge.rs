//! The samna bridge: a transport that drives a real board through the vendor's samna package, by
//! running our Python program `bridge/samna_bridge.py` (compiled in, written to a temporary file) and
//! speaking its pipe protocol (documented in the script). For people who have a board and samna.
//!
//! Every request waits for its reply at most `timeout`; a bridge that exits is reported as gone with
//! the last lines it wrote to stderr.

use crate::error::{BridgeEnd, HwError, HwProblem};
use crate::event::{Event, decode, encode};
use crate::transport::Transport;
use dynap_config::Configuration;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

/// The bridge program.
pub const BRIDGE_SCRIPT: &str = include_str!("../bridge/samna_bridge.py");

/// How to start the bridge.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgeOptions {
    /// The Python that has samna (`python3` by default).
    pub python: PathBuf,
    /// The device name samna reports (`DYNAP-SE2`).
    pub device: String,
    /// Longest wait for one reply.
    pub timeout: Duration,
    /// Extra environment for the Python process (for example `PYTHONPATH`).
    pub env: Vec<(String, String)>,
    /// The FPGA bitstream to upload when the board opens (`Dynapse2Stack.bit`, in Rockpool's source
    /// tree at `rockpool/devices/dynapse/hardware/bitfiles/`; its package does not install it), as
    /// the vendor's flow does; `None`: the FPGA keeps what it has.
    pub bitfile: Option<PathBuf>,
    /// Chips on the board (1 to 4): the chips the resets reach.
    pub chips: usize,
}

impl Default for BridgeOptions {
    fn default() -> BridgeOptions {
        BridgeOptions {
            python: PathBuf::from("python3"),
            device: "DYNAP-SE2".into(),
            timeout: Duration::from_secs(20),
            env: Vec::new(),
            bitfile: None,
            chips: 1,
        }
    }
}

/// A board driven through samna.
pub struct SamnaBridge {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<Result<(u8, Vec<u8>), Unread>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    timeout: Duration,
    description: String,
    script: PathBuf,
}

/// Why the reader thread stopped.
enum Unread {
    /// The bridge ended.
    End(BridgeEnd),
    /// It announced a reply of this many bytes (more than 1 GiB).
    TooLong(usize),
}

/// Reply statuses (the protocol in the script's docstring).
const STATUS_OK: u8 = 0;
const STATUS_NO_SAMNA: u8 = 2;

const OPEN: u8 = 1;
const APPLY: u8 = 2;
const WRITE: u8 = 3;
const READ: u8 = 4;
const RESET: u8 = 5;
const CLOSE: u8 = 6;

impl SamnaBridge {
    /// Starts the bridge and opens the first board samna reports.
    pub fn start(options: &BridgeOptions) -> Result<SamnaBridge, HwError> {
        // A file of our own: created new (never through an existing file or link), unique per bridge.
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let script = std::env::temp_dir().join(format!(
            "dynap-samna-bridge-{}-{}-{nanos}.py",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&script)
            .and_then(|mut f| f.write_all(BRIDGE_SCRIPT.as_bytes()))
            .map_err(|e| HwProblem::BridgeNotWritten {
                path: script.clone(),
                error: e.to_string(),
            })?;
        let mut child = Command::new(&options.python)
            .arg(&script)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HwProblem::BridgeNotStarted {
                python: options.python.clone(),
                error: e.to_string(),
            })?;
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let mut err_pipe = child.stderr.take().expect("piped");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err_pipe.read_to_string(&mut s);
            if let Ok(mut g) = sink.lock() {
                *g = s;
            }
        });
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            loop {
                let mut header = [0u8; 5];
                if stdout.read_exact(&mut header).is_err() {
                    let _ = tx.send(Err(Unread::End(BridgeEnd::ClosedOutput)));
                    return;
                }
                let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
                if len > 1 << 30 {
                    let _ = tx.send(Err(Unread::TooLong(len)));
                    return;
                }
                let mut payload = vec![0u8; len];
                if stdout.read_exact(&mut payload).is_err() {
                    let _ = tx.send(Err(Unread::End(BridgeEnd::StoppedInReply)));
                    return;
                }
                if tx.send(Ok((header[0], payload))).is_err() {
                    return;
                }
            }
        });
        let mut bridge = SamnaBridge {
            child,
            stdin,
            replies,
            stderr,
            timeout: options.timeout,
            description: String::new(),
            script,
        };
        let open = serde_json::json!({
            "device": options.device,
            "bitfile": options.bitfile.as_ref().map(|p| p.display().to_string()),
            "chips": options.chips,
        });
        let reply = bridge.request(OPEN, open.to_string().as_bytes())?;
        bridge.description = String::from_utf8_lossy(&reply).into_owned();
        Ok(bridge)
    }

    /// The bridge ended: how, with the last lines it wrote to stderr.
    fn gone(&mut self, end: BridgeEnd) -> HwError {
        let _ = self.child.try_wait();
        std::thread::sleep(Duration::from_millis(50));
        let err = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let mut stderr: Vec<String> = err.lines().rev().take(3).map(str::to_owned).collect();
        stderr.reverse();
        HwProblem::BridgeEnded { end, stderr }.into()
    }

    fn request(&mut self, op: u8, payload: &[u8]) -> Result<Vec<u8>, HwError> {
        let mut msg = Vec::with_capacity(5 + payload.len());
        msg.push(op);
        msg.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        msg.extend_from_slice(payload);
        if self
            .stdin
            .write_all(&msg)
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return Err(self.gone(BridgeEnd::NotRunning));
        }
        match self.replies.recv_timeout(self.timeout) {
            Ok(Ok((STATUS_OK, payload))) => Ok(payload),
            Ok(Ok((status, message))) => {
                let message = String::from_utf8_lossy(&message).into_owned();
                Err(if status == STATUS_NO_SAMNA {
                    HwProblem::NoSamna { message }
                } else {
                    HwProblem::BridgeRefused { message }
                }
                .into())
            }
            Ok(Err(Unread::End(end))) => Err(self.gone(end)),
            Ok(Err(Unread::TooLong(bytes))) => Err(HwProblem::ReplyTooLong { bytes }.into()),
            Err(RecvTimeoutError::Timeout) => {
                // A late reply would be taken for the next request's: this bridge is done.
                let _ = self.child.kill();
                Err(HwProblem::BridgeTimeout {
                    timeout: self.timeout,
                }
                .into())
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.gone(BridgeEnd::Exited)),
        }
    }
}

impl Drop for SamnaBridge {
    fn drop(&mut self) {
        let _ = self.request(CLOSE, &[]);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.script);
    }
}

impl Transport for SamnaBridge {
    fn name(&self) -> String {
        format!("samna bridge: {}", self.description)
    }

    fn reset(&mut self) -> Result<(), HwError> {
        self.request(RESET, &[]).map(|_| ())
    }

    fn apply(&mut self, config: &Configuration) -> Result<(), HwError> {
        self.request(APPLY, dynap_config::to_json(config).as_bytes())
            .map(|_| ())
    }

    fn write_events(&mut self, events: &[Event]) -> Result<(), HwError> {
        self.request(WRITE, &encode(events)).map(|_| ())
    }

    fn read_events(&mut self) -> Result<Vec<Event>, HwError> {
        let bytes = self.request(READ, &[])?;
        decode(&bytes).map_err(|e| HwProblem::MalformedEvent(e).into())
    }

    fn time_us(&mut self) -> Result<u32, HwError> {
        // The board's clock, read as Rockpool does: a control event comes back stamped.
        // Drain first, so that an older control event is not taken for the probe's.
        self.read_events()?;
        self.write_events(&[crate::host::control_event(0)])?;
        const READS: usize = 200;
        for _ in 0..READS {
            if let Some(e) = self
                .read_events()?
                .into_iter()
                .rev()
                .find(|e| e.destination.tag.get() == dynap_config::CONTROL_TAG)
            {
                return Ok(e.timestamp);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(HwProblem::ClockProbe { reads: READS }.into())
    }
}
