//! `dynap quantize`: a network JSON's weights to the chip's 4-bit format, per core.

use crate::Context;
use dynap_config::format::{QuantMethod, read_network, write_quantized};
use dynap_train::{Error, files, quantization};
use std::path::PathBuf;

/// Quantize a network's weights to the chip's 4-bit format, per core.
///
/// IN is a network JSON (w_in, w_rec, optional core_map, iscale, method, seed; matrices dense or
/// sparse). OUT gets the quantize output: per connection a 4-bit mask, a sign and the dendrite; per
/// core the base currents Iw_0..3 (snapped to the bias generator unless --no-snap) and the relative
/// RMS weight error before and after snapping; the decoded weights; the network's other values.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The network JSON.
    #[arg(value_name = "IN")]
    input: PathBuf,
    /// The quantize output to write.
    #[arg(value_name = "OUT")]
    output: PathBuf,
    /// The quantizer (default: the file's `method`, else alternating).
    #[arg(long, value_enum)]
    method: Option<MethodArg>,
    /// Keep the base currents as fitted instead of snapping them to what the bias generator makes.
    #[arg(long)]
    no_snap: bool,
    /// The autoencoder's seed (default: the file's `seed`, else 0).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MethodArg {
    /// Alternating nearest-sum masks and least-squares base currents (5 to 40 times less error).
    Alternating,
    /// Rockpool's autoencoder.
    Autoencoder,
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    let file = read_network(&files::read_text(&a.input)?).map_err(|error| Error::Format {
        path: a.input.clone(),
        error,
    })?;
    for k in file.unknown_keys() {
        tracing::warn!("{}: unknown key `{k}` (kept as it is)", a.input.display());
    }
    let method = match a.method {
        Some(MethodArg::Alternating) => QuantMethod::Alternating,
        Some(MethodArg::Autoencoder) => QuantMethod::Autoencoder,
        None => file.method.unwrap_or_default(),
    };
    let options = quantization::options(method, a.seed.or(file.seed), !a.no_snap);
    let spinner = cx
        .progress
        .spinner(format!("quantizing ({})", method.name()));
    let q = quantization::quantize_file(&file, &options)?;
    spinner.finish();
    let mut out = quantization::quantized_file(&q, method, &file.network);
    out.extra = file.extra.clone();
    files::write_atomic(&a.output, write_quantized(&out).as_bytes())?;
    cx.say(quantization::table(&q));
    cx.say(format_args!("wrote {}", a.output.display()));
    Ok(())
}
