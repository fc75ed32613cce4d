//! `dynap completions`: a completion script for a shell.

use dynap_train::Error;

/// Print a completion script for a shell to stdout.
///
/// For example `dynap completions bash > ~/.local/share/bash-completion/completions/dynap`, or
/// `dynap completions zsh > "${fpath[1]}/_dynap"`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub(crate) fn run(a: Args, mut command: clap::Command) -> Result<(), Error> {
    clap_complete::generate(a.shell, &mut command, "dynap", &mut std::io::stdout());
    Ok(())
}
