//! `dynap nir`: NIR graphs in (a LIF network trained in any NIR-exporting tool becomes a DynapSim
//! network) and out (a DynapSim network for every NIR tool), and how closely an imported network
//! follows its NIR original.

use super::VariantArg;
use crate::Context;
use dynap_config::format::{read_network, write_network};
use dynap_config::nir::{ImportOptions, export, import};
use dynap_model::DEFAULT_ISCALE;
use dynap_train::{Error, evaluation, files, fit, nir};
use serde_json::json;
use std::path::{Path, PathBuf};

/// NIR (the Neuromorphic Intermediate Representation): import, export, compare.
///
/// NIR files are how snnTorch, Norse, sinabs, Rockpool, Spyx, Lava-DL and others exchange networks.
/// `import` turns a graph of Input, Output, Linear, Affine, Scale, Flatten, LIF, CubaLIF, IF, LI and
/// Threshold nodes (layers and recurrent edges) into a DynapSim network; `export` writes a DynapSim
/// network as Linear and CubaLIF nodes with its exact values in their metadata; `compare` runs the
/// graph with NIR's equations and the network on a task, side by side. The translation rules are in
/// docs/nir.md.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    Import(ImportArgs),
    Export(ExportArgs),
    Compare(CompareArgs),
}

/// A NIR graph as a DynapSim network (network JSON with its populations and blocks).
///
/// Time constants translate exactly; each population's weight scale is fitted so that the DPI
/// neuron's spike counts match the LIF neuron's (see docs/nir.md). What DYNAP-SE2 cannot run (a bias,
/// a leak toward another level than the reset, more than 64 synapses into a neuron, an unknown node)
/// is an error naming the node. A graph written by `dynap nir export` imports exactly.
#[derive(clap::Args, Debug)]
pub(crate) struct ImportArgs {
    /// The NIR file.
    #[arg(value_name = "IN.nir")]
    input: PathBuf,
    /// The network file to write.
    #[arg(long, value_name = "NET.json")]
    out: PathBuf,
    /// The time step (s): NIR graphs carry none.
    #[arg(long, value_name = "S", default_value_t = 1e-3, value_parser = positive)]
    dt: f64,
    /// The model variant (chip: negative weights inhibit; rockpool: Rockpool's DynapSim).
    #[arg(long, value_enum, default_value = "chip")]
    variant: VariantArg,
    /// Iscale (A) of the network.
    #[arg(long, value_name = "A", default_value_t = DEFAULT_ISCALE, value_parser = positive)]
    iscale: f64,
    /// A time constant that differs between a node's neurons takes their mean (a warning) instead of
    /// being an error (DYNAP-SE2 shares its parameters per core).
    #[arg(long)]
    average_parameters: bool,
    /// Then fine-tune it: the dataset experiment of this configuration, started from the imported
    /// network (its network.init), written to --finetune-out.
    #[arg(long, value_name = "EXP.toml")]
    finetune: Option<PathBuf>,
    /// The output folder of the fine-tuning.
    #[arg(long, value_name = "DIR", default_value = "runs/finetune")]
    finetune_out: PathBuf,
}

/// A DynapSim network as a NIR graph.
///
/// One Linear per block of weights (a recurrent population's own block as a cycle), one CubaLIF per
/// population whose time constants are the DPI's and whose weights are scaled as the import would,
/// and Output after the readout. The metadata keep every current, the variant, Iscale and dt, so
/// `dynap nir import` gives the network back exactly.
#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    /// The network file (network JSON, from `dynap train`, `dynap nir import`, ...).
    #[arg(value_name = "NET.json")]
    input: PathBuf,
    /// The NIR file to write.
    #[arg(long, value_name = "OUT.nir")]
    out: PathBuf,
}

/// An imported network against its NIR graph on a task's samples.
///
/// Runs the graph with NIR's equations (docs/nir.md) and the network on the encoded samples of the
/// experiment's split, and prints the per-neuron spike-count correlation per population, both
/// accuracies and how often they give the same class.
#[derive(clap::Args, Debug)]
pub(crate) struct CompareArgs {
    /// The NIR file.
    #[arg(value_name = "IN.nir")]
    graph: PathBuf,
    /// The network (imported from it, fine-tuned, or reverse-mapped from a device).
    #[arg(value_name = "NET.json")]
    network: PathBuf,
    /// The experiment whose data and encoder to use (its [data] table).
    #[arg(long, value_name = "EXP.toml")]
    config: PathBuf,
    /// The split.
    #[arg(long, value_enum, default_value = "validation")]
    split: Split,
    /// Also write the figures as JSON.
    #[arg(long, value_name = "FILE.json")]
    json: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    Train,
    Validation,
    Test,
}

fn positive(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| format!("{s}: expected a number > 0"))
}

pub(crate) fn run(c: Command, cx: &Context) -> Result<(), Error> {
    match c {
        Command::Import(a) => run_import(a, cx),
        Command::Export(a) => run_export(a, cx),
        Command::Compare(a) => run_compare(a, cx),
    }
}

fn nir_error(path: &Path) -> impl Fn(dynap_config::nir::NirError) -> Error + '_ {
    move |error| Error::Nir {
        path: path.to_path_buf(),
        error,
    }
}

fn run_import(a: ImportArgs, cx: &Context) -> Result<(), Error> {
    let graph = nir::read_graph(&a.input)?;
    let variant: dynap_train::config::ModelVariant = a.variant.into();
    let options = ImportOptions {
        dt: a.dt,
        variant: variant.into(),
        iscale: a.iscale,
        average: a.average_parameters,
    };
    let imported = import(&graph, &options).map_err(nir_error(&a.input))?;
    files::write_atomic(&a.out, write_network(&imported.file).as_bytes())?;
    let r = &imported.report;
    if r.exact {
        cx.say("exact import: the graph carries an export's DynapSim values");
    } else {
        cx.say(format_args!(
            "{:<16} {:<9} {:>6} {:>12} {:>11} {:>9} {:>7}",
            "population", "model", "size", "scale s", "inhibition", "residual", "fan-in"
        ));
        for p in &r.populations {
            cx.say(format_args!(
                "{:<16} {:<9} {:>6} {:>12.4e} {:>11.3} {:>9.2} {:>7}",
                p.name,
                p.kind.name(),
                p.size,
                p.scale,
                p.inhibition,
                p.residual,
                p.max_fan_in
            ));
        }
    }
    for w in &r.warnings {
        cx.say(format_args!("warning: {w}"));
    }
    cx.say(format_args!("wrote {}", a.out.display()));
    if let Some(exp) = &a.finetune {
        finetune(exp, &a.out, &imported.file.network, &a.finetune_out, cx)?;
    }
    Ok(())
}

/// The dataset experiment of `exp`, started from the network file `init`.
fn finetune(
    exp: &Path,
    init: &Path,
    net: &dynap_model::Network,
    out: &Path,
    cx: &Context,
) -> Result<(), Error> {
    let mut config = files::read_experiment(exp)?;
    if config.data.is_none() {
        return Err(Error::Mismatch(format!(
            "{}: fine-tuning needs a dataset experiment (a [data] table)",
            exp.display()
        )));
    }
    let dir = fit::config_dir(Some(exp));
    fit::resolve_data_paths(&mut config, &dir);
    fit::start_from(&mut config, init, net);
    config.validate().map_err(|error| Error::Config {
        path: Some(exp.to_path_buf()),
        error,
    })?;
    files::create_dir(out)?;
    cx.log.open(&out.join("run.log"))?;
    let run = fit::train(
        &config,
        &dir,
        out,
        false,
        &evaluation::JudgeOptions::default(),
        &cx.progress,
    )?;
    run.write(out)?;
    cx.say(run.table().trim_end());
    cx.say(format_args!("wrote {}", out.display()));
    Ok(())
}

fn run_export(a: ExportArgs, cx: &Context) -> Result<(), Error> {
    let text = files::read_text(&a.input)?;
    let file = read_network(&text).map_err(|error| Error::Format {
        path: a.input.clone(),
        error,
    })?;
    let graph = export(&file).map_err(nir_error(&a.input))?;
    nir::write_graph(&a.out, &graph)?;
    let linear = graph.nodes.values().filter(|n| n.kind == "Linear").count();
    let cuba = graph.nodes.values().filter(|n| n.kind == "CubaLIF").count();
    cx.say(format_args!(
        "wrote {} ({cuba} CubaLIF, {linear} Linear; exact DynapSim values in the metadata)",
        a.out.display()
    ));
    Ok(())
}

fn run_compare(a: CompareArgs, cx: &Context) -> Result<(), Error> {
    let graph = nir::read_graph(&a.graph)?;
    let lif = dynap_config::nir::LifNetwork::from_graph(&graph).map_err(nir_error(&a.graph))?;
    let text = files::read_text(&a.network)?;
    let file = read_network(&text).map_err(|error| Error::Format {
        path: a.network.clone(),
        error,
    })?;
    let mut config = files::read_experiment(&a.config)?;
    let dir = fit::config_dir(Some(&a.config));
    fit::resolve_data_paths(&mut config, &dir);
    // The data as the experiment encodes it, for this network (started from it: its architecture,
    // variant, dt and iscale).
    fit::start_from(&mut config, &a.network, &file.network);
    let prep = fit::prepare(&config, &dir)?;
    let data = match a.split {
        Split::Train => &prep.train,
        Split::Validation => &prep.validation,
        Split::Test => prep.test.as_ref().ok_or_else(|| {
            Error::Mismatch(format!(
                "{}: the data has no test split",
                a.config.display()
            ))
        })?,
    };
    let readout = prep.readout();
    let agreement = nir::compare(&lif, &file.network, data, &readout, 0)?;
    cx.say(agreement.table().trim_end());
    if let Some(path) = &a.json {
        let mut v = agreement.to_json();
        v["split"] = json!(format!("{:?}", a.split).to_lowercase());
        files::write_atomic(
            path,
            serde_json::to_string_pretty(&v)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        cx.say(format_args!("wrote {}", path.display()));
    }
    Ok(())
}
