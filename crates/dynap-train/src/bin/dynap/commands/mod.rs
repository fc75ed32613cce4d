//! One module per subcommand of `dynap`: its arguments (clap derive) and its run, which reads the
//! files it is given, calls the library, writes its outputs and prints its results.

pub(crate) mod bench;
pub(crate) mod calibrate;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod deploy;
pub(crate) mod devices;
pub(crate) mod emulator;
pub(crate) mod eval;
pub(crate) mod golden;
pub(crate) mod map;
pub(crate) mod nir;
pub(crate) mod quantize;
pub(crate) mod train;
pub(crate) mod unmap;

/// The model variants, as the command line names them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VariantArg {
    /// Rockpool's DynapSim (the paper's model).
    Rockpool,
    /// The chip's own model: four dendrites, inhibition that inhibits, the leak counted once.
    Chip,
}

impl From<VariantArg> for dynap_train::config::ModelVariant {
    fn from(v: VariantArg) -> Self {
        match v {
            VariantArg::Rockpool => dynap_train::config::ModelVariant::Rockpool,
            VariantArg::Chip => dynap_train::config::ModelVariant::Chip,
        }
    }
}
