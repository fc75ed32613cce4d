//! `dynap devices`: the boards this machine can reach.

use crate::Context;
use dynap_train::Error;
use std::path::PathBuf;

/// List the DYNAP-SE2 boards visible on USB (Opal Kelly, vendor id 151f) and through samna.
///
/// Exits 0 with a one-line reason for each kind when there is none.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The Python that has samna.
    #[arg(long, value_name = "PY", default_value = "python3")]
    python: PathBuf,
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    match dynap_hw::list_boards(dynap_hw::OPAL_KELLY_VID, None) {
        Err(e) => cx.say(format_args!("usb: none ({e})")),
        Ok(boards) if boards.is_empty() => cx.say(
            "usb: none (no device with the Opal Kelly vendor id 151f: plugged in and powered? on Linux, the udev \
             rule SUBSYSTEM==\"usb\", ATTRS{idVendor}==\"151f\", MODE=\"0666\" gives access)",
        ),
        Ok(boards) => {
            for b in boards {
                cx.say(format_args!(
                    "usb: {b} (found; driving it needs the vendor's protocol: use --device samna)"
                ));
            }
        }
    }
    let spinner = cx.progress.spinner("looking for samna");
    let samna = dynap_hw::SamnaBridge::start(&dynap_hw::BridgeOptions {
        python: a.python,
        timeout: std::time::Duration::from_secs(10),
        ..dynap_hw::BridgeOptions::default()
    });
    spinner.finish();
    match samna {
        Ok(b) => cx.say(format_args!("samna: {}", dynap_hw::Transport::name(&b))),
        Err(e) => cx.say(format_args!("samna: none ({e})")),
    }
    cx.say("emulator: always available (dynap deploy --device emulator)");
    Ok(())
}
