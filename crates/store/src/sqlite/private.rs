//! The store's files are readable by their owner only: the event log holds
//! customers' data and request headers, so no other local user should read it.
//!
//! SQLite creates the WAL, the shared-memory file and the lock file with the
//! database file's permissions, so creating (or tightening) the database file
//! at 0600 and its directory at 0700 before SQLite opens it covers them all.

use std::{fs, io, path::Path};

/// Creates `dir` (and missing parents) readable by the owner only. An
/// existing directory is left as it is: it may be shared on purpose.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes the database file at `path` and its companions owner-only: creates
/// it and its lock file (`<db>-lock`, which SQLite would create with the
/// default mode) empty at 0600 when missing, and takes group and other
/// access away from each that exists. A file this process cannot change is
/// left as it is.
pub(crate) fn prepare_files(path: &Path) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    for suffix in ["", "-lock"] {
        options.open(with_suffix(path, suffix))?;
    }
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm", "-lock", "-intake0", "-intake1"] {
        use std::os::unix::fs::PermissionsExt;
        let file = with_suffix(path, suffix);
        if let Ok(meta) = fs::metadata(&file) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                let _ = fs::set_permissions(&file, fs::Permissions::from_mode(mode & 0o700));
            }
        }
    }
    Ok(())
}

/// `<path><suffix>`: the name of one of the database file's companions.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut file = path.as_os_str().to_owned();
    file.push(suffix);
    file.into()
}
