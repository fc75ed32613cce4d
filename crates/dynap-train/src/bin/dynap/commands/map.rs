//! `dynap map`: a network onto DYNAP-SE2 cores: the samna configuration and `mapping.json`.

use crate::Context;
use dynap_config::MapOptions;
use dynap_config::format::{self, QuantizedFile};
use dynap_model::Variant;
use dynap_train::{Error, files, quantization};
use std::path::{Path, PathBuf};

/// Map a network onto DYNAP-SE2 cores, CAMs, SRAMs and bias generators.
///
/// IN is a quantize output (it has w_in_mask or w_rec_mask), or a network JSON, which is then
/// clustered into cores by its parameters (unless it has a core_map) and quantized with the default
/// quantizer. Every hardware limit is checked first and every problem reported. Writes --out:
/// config.json (samna's format), config.bin (compact, versioned, checksummed), mapping.json (the
/// neuron and channel order, iscale, dt and variant, for the way back) and run.log.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The quantize output or network JSON.
    #[arg(value_name = "IN")]
    input: PathBuf,
    /// The output folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Per-core tag allow-lists: a JSON object {"<chip>:<core>": [tags]}.
    #[arg(long, value_name = "FILE")]
    tags: Option<PathBuf>,
}

fn format_error(path: &Path) -> impl Fn(format::FormatError) -> Error + '_ {
    move |error| Error::Format {
        path: path.to_owned(),
        error,
    }
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    let text = files::read_text(&a.input)?;
    let here = format_error(&a.input);
    let (file, note) = if format::is_quantized(&text).map_err(&here)? {
        (
            format::read_quantized(&text).map_err(&here)?,
            "quantized input",
        )
    } else {
        let mut file = format::read_network(&text).map_err(&here)?;
        if file.core_map.is_none() {
            file.core_map = Some(dynap_config::cluster_by_parameters(&file.network.params, 0));
        }
        let method = file.method.unwrap_or_default();
        let options = quantization::options(method, file.seed, true);
        let q = quantization::quantize_file(&file, &options)?;
        (
            quantization::quantized_file(&q, method, &file.network),
            "quantized with the default quantizer",
        )
    };
    let QuantizedFile {
        weights,
        params,
        dt,
        variant,
        chip,
        ..
    } = file;
    let mut options = MapOptions {
        chip: chip.filter(|_| variant == Variant::Chip),
        ..MapOptions::default()
    };
    if let Some(t) = &a.tags {
        options.tag_allow =
            format::read_tag_allow(&files::read_text(t)?).map_err(format_error(t))?;
    }
    files::create_dir(&a.out)?;
    cx.log.open(&a.out.join("run.log"))?;
    let mapped = dynap_config::map(&weights, &params, dt, variant, &options)?;
    let json = dynap_config::to_json(&mapped.config);
    let bin = dynap_config::to_binary(&mapped.config);
    files::write_atomic(&a.out.join("config.json"), json.as_bytes())?;
    files::write_atomic(&a.out.join("config.bin"), &bin)?;
    files::write_atomic(
        &a.out.join("mapping.json"),
        format::write_mapping(&mapped.mapping).as_bytes(),
    )?;
    let synapses: usize = mapped
        .config
        .chips
        .iter()
        .flat_map(|c| &c.cores)
        .flat_map(|c| &c.neurons)
        .map(|n| n.synapses.iter().filter(|s| s.is_active()).count())
        .sum();
    cx.say(format_args!(
        "mapped {} neurons ({note}) onto {} core(s) of {} chip(s): {synapses} CAM entries, {} input channels",
        weights.neurons(),
        mapped.core_currents.len(),
        mapped.config.chips.len(),
        mapped.mapping.inputs.len(),
    ));
    cx.say(format_args!(
        "wrote {} ({:.1} MB), {} ({:.1} MB), {}",
        a.out.join("config.json").display(),
        json.len() as f64 / 1e6,
        a.out.join("config.bin").display(),
        bin.len() as f64 / 1e6,
        a.out.join("mapping.json").display(),
    ));
    Ok(())
}
