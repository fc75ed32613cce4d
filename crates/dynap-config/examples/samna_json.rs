//! A chip configuration with `dynap-config` alone: a quantized network mapped onto a core, written as
//! samna's JSON, read back, validated, converted to the binary form, and broken on purpose to show
//! what validation reports. Files go to the system's temporary folder.
//!
//! Run: `cargo run -p dynap-config --example samna_json`

use dynap_config::format::{QuantizedFile, read_quantized, write_quantized};
use dynap_config::{MapOptions, from_binary, from_json, map, to_binary, to_json, validate};
use dynap_model::{NeuronParams, QuantMatrix, QuantizedWeights, Variant, WeightMatrix};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Two input channels into three neurons on core 0; masks pick base currents, signs pick AMPA/GABA.
    let w_in = QuantMatrix::new(
        WeightMatrix::Input,
        2,
        3,
        vec![3, 0, 15, 1, 8, 0],
        vec![1, 0, -1, 1, 1, 0],
    )?;
    let w_rec = QuantMatrix::new(
        WeightMatrix::Recurrent,
        3,
        3,
        vec![0, 2, 0, 0, 0, 4, 1, 0, 0],
        vec![0, 1, 0, 0, 0, -1, 1, 0, 0],
    )?;
    let weights = QuantizedWeights::new(
        vec![0, 0, 0],
        vec![[1e-9, 2e-9, 4e-9, 8e-9]],
        Some(w_in),
        w_rec,
        1e-8,
    )?;
    let params = NeuronParams::defaults(3);
    let mapped = map(
        &weights,
        &params,
        1e-3,
        Variant::Rockpool,
        &MapOptions::default(),
    )?;

    let dir = std::env::temp_dir().join(format!("dynap-config-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("config.json");
    std::fs::write(&path, to_json(&mapped.config))?;
    let text = std::fs::read_to_string(&path)?;
    let config = from_json(&text).map_err(|problems| format!("{} problems", problems.len()))?;
    println!(
        "{}: {} bytes, {} chip(s), {} violation(s)",
        path.display(),
        text.len(),
        config.chips.len(),
        validate(&config, Some(&mapped.mapping.inputs)).len()
    );
    let bin = to_binary(&config);
    assert_eq!(
        from_binary(&bin)?,
        config,
        "the binary form reads back equal"
    );
    println!("binary form: {} bytes", bin.len());

    // The quantized network itself, as the quantize output a user keeps beside the configuration.
    let file = QuantizedFile::new(weights.clone(), Vec::new(), &{
        let mut net = dynap_model::Network::with_defaults(3);
        net.params = params;
        net
    });
    let written = write_quantized(&file);
    assert_eq!(read_quantized(&written)?, file);
    println!("quantize output: {} bytes, reads back equal", written.len());

    // A configuration the chip cannot take: a tag out of range is refused at reading, with its path.
    let broken = text.replacen("\"tag\":0}", "\"tag\":4096}", 1);
    match from_json(&broken) {
        Ok(_) => println!("(the broken text still read: no tag 0 to break)"),
        Err(problems) => {
            for p in problems {
                println!("refused: {p}");
            }
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
