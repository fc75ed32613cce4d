//! `dynap config validate|convert|inspect`: chip configurations (samna's JSON or our binary).

use crate::Context;
use dynap_config::Configuration;
use dynap_model::BiasGenerator;
use dynap_train::{Error, files};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Check, convert or summarise a chip configuration (samna JSON, or .bin).
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Check every hardware limit; exit 1 with every problem (and where it is) on stderr.
    ///
    /// Uses mapping.json beside the file, when there is one, to check the input channels' routes too.
    Validate {
        /// The configuration (.json or .bin).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Convert between samna's JSON and the binary encoding, by extension (.json, .bin).
    Convert {
        /// The configuration to read.
        #[arg(value_name = "IN")]
        input: PathBuf,
        /// The file to write.
        #[arg(value_name = "OUT")]
        output: PathBuf,
    },
    /// Summarise the cores used: neurons, synapses per dendrite, biases as codes and currents.
    Inspect {
        /// The configuration (.json or .bin).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(c: Command, cx: &Context) -> Result<(), Error> {
    match c {
        Command::Validate { file } => {
            let config = files::read_configuration(&file)?;
            let inputs = file
                .parent()
                .map(|d| d.join("mapping.json"))
                .filter(|m| m.exists())
                .and_then(|m| files::read_text(&m).ok())
                .and_then(|t| dynap_config::format::read_mapping(&t).ok())
                .map(|m| m.inputs);
            let violations = dynap_config::validate(&config, inputs.as_deref());
            if violations.is_empty() {
                cx.say(format_args!(
                    "{}: valid ({} chip(s))",
                    file.display(),
                    config.chips.len()
                ));
                return Ok(());
            }
            Err(Error::Configuration {
                path: file,
                problems: violations
                    .iter()
                    .map(ToString::to_string)
                    .chain([format!("invalid ({} violation(s))", violations.len())])
                    .collect(),
            })
        }
        Command::Convert { input, output } => {
            let config = files::read_configuration(&input)?;
            let len = files::write_configuration(&output, &config)?;
            cx.say(format_args!("wrote {} ({len} bytes)", output.display()));
            Ok(())
        }
        Command::Inspect { file, json } => {
            let config = files::read_configuration(&file)?;
            cx.say(inspect(&config, json));
            Ok(())
        }
    }
}

/// A summary of a configuration for people (or as JSON).
fn inspect(config: &Configuration, as_json: bool) -> String {
    let generator = BiasGenerator::dynapse2();
    let mut cores = Vec::new();
    for (h, chip) in config.chips.iter().enumerate() {
        for (c, core) in chip.cores.iter().enumerate() {
            let active: Vec<_> = core
                .neurons
                .iter()
                .filter(|n| {
                    n.synapses.iter().any(|s| s.is_active())
                        || n.destinations[1..].iter().any(|d| d.is_used())
                })
                .collect();
            if active.is_empty() && core.parameters.is_empty() {
                continue;
            }
            let mut per_dendrite = std::collections::BTreeMap::new();
            for n in &core.neurons {
                for s in n.synapses.iter().filter(|s| s.is_active()) {
                    let name = s.dendrite.to_model().map_or("none", |d| d.name());
                    *per_dendrite.entry(name).or_insert(0usize) += 1;
                }
            }
            let biases: Vec<Value> = core
                .parameters
                .iter()
                .map(|(name, p)| {
                    let current = generator.current_from_code(name, p.code()).ok();
                    json!({"name": name, "coarse": p.coarse, "fine": p.fine, "type": p.kind.to_string(), "current": current})
                })
                .collect();
            cores.push(json!({
                "chip": h, "core": c, "neurons_used": active.len(),
                "dc_latched": core.neurons.iter().filter(|n| n.latches[0]).count(),
                "synapses": per_dendrite, "biases": biases,
            }));
        }
    }
    let summary = json!({"chips": config.chips.len(), "cores": cores});
    if as_json {
        return serde_json::to_string_pretty(&summary).unwrap_or_default();
    }
    let mut s = format!("{} chip(s)\n", config.chips.len());
    for c in summary["cores"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "chip {} core {}: {} neurons used, {} with the DC latch, synapses {}\n",
            c["chip"], c["core"], c["neurons_used"], c["dc_latched"], c["synapses"]
        ));
        for b in c["biases"].as_array().into_iter().flatten() {
            let current = b["current"]
                .as_f64()
                .map_or("unknown scale".into(), |i| format!("{i:.4e} A"));
            s.push_str(&format!(
                "    {:<16} ({}, {:>3}) {}  {}\n",
                b["name"].as_str().unwrap_or(""),
                b["coarse"],
                b["fine"],
                b["type"].as_str().unwrap_or(""),
                current
            ));
        }
    }
    s.trim_end().to_owned()
}
