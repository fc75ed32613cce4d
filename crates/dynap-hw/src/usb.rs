//! USB discovery of DYNAP-SE2 boards with nusb.
//!
//! The board is an Opal Kelly FPGA module (XEM7310, USB vendor id 0x151F) running a closed protocol only
//! the vendor's samna software speaks (hardware.md section 7). What is real here: listing the boards by
//! vendor id (product id configurable: it is not public), identifying them (bus, address, serial,
//! strings), and clear messages when there is no USB subsystem, no device or no permission. Moving data
//! needs the vendor's protocol: use the samna bridge.

use crate::error::{HwError, HwProblem};
use nusb::MaybeFuture;

/// Opal Kelly's USB vendor id.
pub const OPAL_KELLY_VID: u16 = 0x151F;

/// A board seen on the USB bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbBoard {
    /// Bus identifier.
    pub bus: String,
    /// Device address on the bus.
    pub address: u8,
    /// Vendor id.
    pub vendor_id: u16,
    /// Product id.
    pub product_id: u16,
    /// Manufacturer string, if readable.
    pub manufacturer: Option<String>,
    /// Product string, if readable.
    pub product: Option<String>,
    /// Serial number, if readable.
    pub serial: Option<String>,
}

impl std::fmt::Display for UsbBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "usb bus {} address {}: {:04x}:{:04x} {} {} (serial {})",
            self.bus,
            self.address,
            self.vendor_id,
            self.product_id,
            self.manufacturer.as_deref().unwrap_or("?"),
            self.product.as_deref().unwrap_or("?"),
            self.serial.as_deref().unwrap_or("?")
        )
    }
}

/// The boards with vendor id `vid` (and product id `pid`, if given). An error says why the bus could
/// not be read (no USB subsystem, no permission to list devices).
pub fn list_boards(vid: u16, pid: Option<u16>) -> Result<Vec<UsbBoard>, HwError> {
    Ok(devices(vid, pid)?.map(|d| board(&d)).collect())
}

/// The USB devices with these ids.
fn devices(vid: u16, pid: Option<u16>) -> Result<impl Iterator<Item = nusb::DeviceInfo>, HwError> {
    let devices = nusb::list_devices()
        .wait()
        .map_err(|e| HwProblem::UsbListing {
            error: e.to_string(),
        })?;
    Ok(devices.filter(move |d| d.vendor_id() == vid && pid.is_none_or(|p| d.product_id() == p)))
}

fn board(d: &nusb::DeviceInfo) -> UsbBoard {
    UsbBoard {
        bus: d.bus_id().to_owned(),
        address: d.device_address(),
        vendor_id: d.vendor_id(),
        product_id: d.product_id(),
        manufacturer: d.manufacturer_string().map(str::to_owned),
        product: d.product_string().map(str::to_owned),
        serial: d.serial_number().map(str::to_owned),
    }
}

/// Opens the first matching board and claims its interface 0: proves the board is there and this user
/// may use it (a permission error comes with the udev rule that fixes it).
pub fn open_and_claim(vid: u16, pid: Option<u16>) -> Result<UsbBoard, HwError> {
    let Some(info) = devices(vid, pid)?.next() else {
        return Err(HwProblem::NoUsbBoard {
            vendor_id: vid,
            product_id: pid,
        }
        .into());
    };
    let board = board(&info);
    let device = info.open().wait().map_err(|e| HwProblem::UsbOpen {
        board: board.clone(),
        error: e.to_string(),
    })?;
    device
        .claim_interface(0)
        .wait()
        .map_err(|e| HwProblem::UsbClaim {
            board: board.clone(),
            error: e.to_string(),
        })?;
    Ok(board)
}

/// What `--device usb` can do: find, open and claim the board, then say what is missing.
pub fn usb_transport(vid: u16, pid: Option<u16>) -> Result<std::convert::Infallible, HwError> {
    let board = open_and_claim(vid, pid)?;
    Err(HwProblem::VendorProtocol { board }.into())
}
