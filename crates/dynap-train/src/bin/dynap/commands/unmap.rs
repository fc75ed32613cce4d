//! `dynap unmap`: the network a configuration implements (the reverse mapping).

use crate::Context;
use dynap_config::format::{CoreEntry, QuantizedFile, read_mapping, write_quantized};
use dynap_model::{BiasGenerator, DEFAULT_DT, DEFAULT_ISCALE};
use dynap_train::{Error, files};
use std::path::PathBuf;

/// The network a configuration implements: the reverse mapping.
///
/// DIR holds config.json (or config.bin) and, when present, mapping.json, which restores the neuron and
/// channel order, iscale, dt and the variant. Writes the quantize output format (masks, signs, base
/// currents per core), the decoded weights, the per-neuron currents decoded from the bias codes, and
/// each neuron's place on the board (`places`).
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The folder `dynap map` wrote (or any folder with config.json or config.bin).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The network file to write.
    #[arg(long, value_name = "NET.json")]
    out: PathBuf,
    /// Iscale (A) when there is no mapping.json.
    #[arg(long, value_name = "A", default_value_t = DEFAULT_ISCALE, value_parser = current)]
    iscale: f64,
}

fn current(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| format!("{s}: expected a current > 0 (A), e.g. 1e-8"))
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    let json_path = a.dir.join("config.json");
    let path = if json_path.exists() {
        json_path
    } else {
        a.dir.join("config.bin")
    };
    let config = files::read_configuration(&path)?;
    let mapping_path = a.dir.join("mapping.json");
    let mapping = if mapping_path.exists() {
        Some(
            read_mapping(&files::read_text(&mapping_path)?).map_err(|error| Error::Format {
                path: mapping_path.clone(),
                error,
            })?,
        )
    } else {
        None
    };
    let u = dynap_config::unmap(
        &config,
        mapping.as_ref(),
        a.iscale,
        DEFAULT_DT,
        &BiasGenerator::dynapse2(),
    )?;
    let cores = u
        .weights
        .base_currents()
        .iter()
        .enumerate()
        .filter(|(g, _)| u.weights.core_map().contains(g))
        .map(|(core, &iw)| CoreEntry::new(core, iw))
        .collect();
    let mut file = QuantizedFile::new(u.weights.clone(), cores, &u.network);
    file.places = Some(u.neurons.clone());
    files::write_atomic(&a.out, write_quantized(&file).as_bytes())?;
    cx.say(format_args!(
        "restored {} neurons and {} input channels from {}{}",
        u.network.neurons(),
        u.network.input_channels(),
        path.display(),
        if mapping.is_some() {
            " with mapping.json"
        } else {
            " (no mapping.json: neuron order by place, channels by tag)"
        },
    ));
    for n in &u.notes {
        cx.say(format_args!("note: {n}"));
    }
    cx.say(format_args!("wrote {}", a.out.display()));
    Ok(())
}
