//! Reading and writing the user's files, with the path in every error: writes are atomic (a temporary
//! file in the same folder, then a rename), so a crash never leaves half a file.

use crate::error::Error;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating the folder if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomic_io(path, bytes).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "write",
        source,
    })
}

/// [`write_atomic`] with the operating system's error alone.
pub(crate) fn write_atomic_io(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The text of a file.
pub fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "read",
        source,
    })
}

/// The bytes of a file.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "read",
        source,
    })
}

/// Creates a folder and its parents.
pub fn create_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "create",
        source,
    })
}

/// Reads and checks an experiment TOML; an error names the file and the key.
pub fn read_experiment(path: &Path) -> Result<crate::config::Config, Error> {
    crate::config::Config::from_toml(&read_text(path)?).map_err(|error| Error::Config {
        path: Some(path.to_owned()),
        error,
    })
}

/// Reads a chip configuration by extension: `.bin` the binary encoding, anything else samna's JSON;
/// every problem on failure.
pub fn read_configuration(path: &Path) -> Result<dynap_config::Configuration, Error> {
    let bytes = read_bytes(path)?;
    let problems = |problems: Vec<String>| Error::Configuration {
        path: path.to_owned(),
        problems,
    };
    if path.extension().is_some_and(|e| e == "bin") {
        dynap_config::from_binary(&bytes).map_err(|e| problems(vec![e.to_string()]))
    } else {
        let text = String::from_utf8(bytes)
            .map_err(|e| problems(vec![format!("not UTF-8 text ({e})")]))?;
        dynap_config::from_json(&text).map_err(|ps| {
            let count = format!("invalid ({} problem(s))", ps.len());
            problems(ps.iter().map(ToString::to_string).chain([count]).collect())
        })
    }
}

/// Writes a chip configuration by extension (`.bin` binary, anything else samna's JSON), atomically;
/// returns the bytes written.
pub fn write_configuration(
    path: &Path,
    config: &dynap_config::Configuration,
) -> Result<usize, Error> {
    let bytes = if path.extension().is_some_and(|e| e == "bin") {
        dynap_config::to_binary(config)
    } else {
        dynap_config::to_json(config).into_bytes()
    };
    write_atomic(path, &bytes)?;
    Ok(bytes.len())
}

/// The error of a failed write of `path` (for writers that report `std::io::Error`).
pub(crate) fn write_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        action: "write",
        source,
    }
}
