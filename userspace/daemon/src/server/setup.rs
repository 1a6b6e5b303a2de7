//! What every datapath of `tandem run` starts from: the configuration (with the command
//! line's overrides), the state directory, the server DUID and the store options.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tandem_config::Config;
use tandem_store::StoreOptions;

use super::RunOptions;
use crate::timefmt::unix_now;

/// What `tandem run` serves with, once the configuration, the command line and the state
/// directory are read.
#[derive(Debug)]
pub(crate) struct Setup {
    /// The configuration, with `--datapath` / `--cores` applied.
    pub(crate) config: Config,
    /// The state directory (exists and is writable).
    pub(crate) state_dir: PathBuf,
    /// The server DUID.
    pub(crate) duid: Vec<u8>,
    /// Options of every shard's store.
    pub(crate) store: StoreOptions,
}

impl Setup {
    /// Reads the configuration (errors are printed: `None`), applies the command line's
    /// overrides, prepares the state directory and loads or creates the server DUID.
    ///
    /// # Errors
    /// The state directory is unusable or the server DUID cannot be stored.
    pub(crate) fn load(opts: &RunOptions) -> anyhow::Result<Option<Self>> {
        let Some(mut config) = crate::check::load_or_report(&opts.config, &mut io::stderr())
            .context("writing errors")?
        else {
            return Ok(None);
        };
        if let Some(mode) = opts.datapath {
            config.datapath.mode = mode;
        }
        if let Some(list) = &opts.cores {
            config.datapath.cores = Some(list.clone());
        }
        let state_dir = opts
            .state_dir
            .clone()
            .unwrap_or_else(|| config.server.state_dir.clone());
        prepare_state_dir(&state_dir)?;
        // The MAC of the first interface makes a DUID-LLT; a non-Ethernet interface (or none)
        // gets a DUID-UUID instead.
        let mac = config
            .interfaces
            .first()
            .and_then(|iface| tandem_datapath::iface::interface_mac(iface).ok());
        let duid = tandem_store::server_duid::load_or_create(&state_dir, mac, unix_now())
            .with_context(|| format!("loading the server DUID in {}", state_dir.display()))?;
        Ok(Some(Self {
            config,
            state_dir,
            duid,
            store: StoreOptions {
                capacity: opts.capacity,
                flush_interval: opts.flush_interval,
            },
        }))
    }
}

/// Creates the state directory if needed and checks that files can be created in it.
pub(crate) fn prepare_state_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("creating the state directory {}", dir.display()))?;
    let probe = dir.join(format!(".tandem-write-test.{}", std::process::id()));
    match fs::write(&probe, b"") {
        Ok(()) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!("state directory {} is not writable: {e}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_state_dir_creates_missing_and_rejects_files() {
        let base = std::env::temp_dir().join(format!("tandem-run-{}", std::process::id()));
        let dir = base.join("a/b");
        prepare_state_dir(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "probe file left behind"
        );
        let file = base.join("file");
        fs::write(&file, b"x").unwrap();
        let err = prepare_state_dir(&file.join("sub")).unwrap_err();
        fs::remove_dir_all(&base).unwrap();
        assert!(
            err.to_string().contains("creating the state directory"),
            "{err}"
        );
    }
}
