//! The safe-head store's file (`--safedb.path`): read and replayed once at start (a torn tail
//! cut off), then written by the `safedb` worker thread, appending records with `fdatasync`
//! or replacing the file atomically (temporary file, sync, rename, sync of the directory).
//! The format and all decisions are in `crate::driver::safedb`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::driver::safedb::{SafeDbWrite, SafeHeads, HEADER_LEN, SET_LEN};
use crate::protocol::primitives::B256;

/// The open file.
pub struct SafeDbFile {
    path: PathBuf,
    file: File,
}

/// Opens (or creates) the store at `path` for the chain with L2 genesis `genesis`.
pub fn open(path: &Path, genesis: B256, max_entries: usize) -> Result<(SafeHeads, SafeDbFile), String> {
    // Compaction keeps a store's file near twice what its entries need.
    let limit = 4 * (HEADER_LEN + max_entries.saturating_mul(SET_LEN)) as u64;
    let bytes = match super::files::read(path, limit) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(format!(
                "{} is larger than a safe head database can be ({limit} bytes)",
                path.display()
            ))
        }
        Err(e) => return Err(format!("failed to read {}: {e}", path.display())),
    };
    let loaded =
        SafeHeads::load(&bytes, genesis, max_entries).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut store = loaded.store;
    if loaded.fresh {
        replace(path, &store.snapshot())?;
    } else if loaded.skipped > 0 {
        // Valid records are kept: the file is rewritten from them, never cut.
        log::warn!(
            "safe head db {}: skipped {} bytes of corrupt records, rewriting it from its {} valid entries",
            path.display(),
            loaded.skipped,
            store.len()
        );
        replace(path, &store.snapshot())?;
    } else if loaded.valid_len < bytes.len() {
        log::warn!(
            "safe head db {}: dropping {} bytes of incomplete or corrupt records at its end",
            path.display(),
            bytes.len() - loaded.valid_len
        );
        let f = OpenOptions::new().write(true).open(path).map_err(|e| e.to_string())?;
        f.set_len(loaded.valid_len as u64).and_then(|_| f.sync_all()).map_err(|e| e.to_string())?;
    }
    let file = append_handle(path)?;
    log::info!("safe head db {}: {} entries", path.display(), store.len());
    Ok((store, SafeDbFile { path: path.to_path_buf(), file }))
}

impl SafeDbFile {
    /// Performs one write.
    pub fn write(&mut self, w: SafeDbWrite) -> Result<(), String> {
        match w {
            SafeDbWrite::Append(b) => {
                self.file.write_all(&b).and_then(|_| self.file.sync_data()).map_err(|e| e.to_string())
            }
            SafeDbWrite::Rewrite(b) => {
                replace(&self.path, &b)?;
                self.file = append_handle(&self.path)?;
                Ok(())
            }
        }
    }
}

fn append_handle(path: &Path) -> Result<File, String> {
    OpenOptions::new().append(true).open(path).map_err(|e| format!("failed to open {}: {e}", path.display()))
}

/// Replaces the file atomically; a failed attempt (a full disk) leaves no temporary file.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(format!("failed to write {}: {e}", path.display()));
    }
    // The rename is durable once the directory is synced.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::block_ref::BlockId;

    fn id(n: u64) -> BlockId {
        BlockId { hash: B256([n as u8; 32]), number: n }
    }

    #[test]
    fn survives_a_torn_append_and_rewrites() {
        let dir = std::env::temp_dir().join(format!("op-lite-safedb-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let path = dir.join("safe.db");
        let _ = fs::remove_file(&path);
        let g = B256([3; 32]);
        let (mut store, mut file) = open(&path, g, 100).unwrap();
        for n in 1..=3 {
            file.write(SafeDbWrite::Append(store.update(id(n), id(n + 100)))).unwrap();
        }
        // A crash in the middle of the next append: half a record on disk.
        let torn = store.update(id(4), id(104));
        file.write(SafeDbWrite::Append(torn[..torn.len() / 2].to_vec())).unwrap();
        drop(file);
        let (store, mut file) = open(&path, g, 100).unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.at(200).unwrap().safe, id(3));
        // The cut file takes appends again.
        let mut store = store;
        file.write(SafeDbWrite::Append(store.update(id(5), id(105)))).unwrap();
        file.write(SafeDbWrite::Rewrite(store.snapshot())).unwrap();
        drop(file);
        let (store, _) = open(&path, g, 100).unwrap();
        assert_eq!(store.len(), 4);
        assert_eq!(fs::metadata(&path).unwrap().len() as usize, store.file_len());
        let err = open(&path, B256([4; 32]), 100).err().unwrap_or_default();
        assert!(err.contains("belongs to the chain"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_record_is_skipped_and_the_file_rewritten_not_cut() {
        let dir = std::env::temp_dir().join(format!("op-lite-safedb-corrupt-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        let path = dir.join("safe.db");
        let _ = fs::remove_file(&path);
        let g = B256([3; 32]);
        let (mut store, mut file) = open(&path, g, 1000).unwrap();
        for n in 1..=122 {
            file.write(SafeDbWrite::Append(store.update(id(n), id(n + 100)))).unwrap();
        }
        drop(file);
        let mut bytes = fs::read(&path).unwrap();
        let len = bytes.len();
        bytes[HEADER_LEN + 9 * SET_LEN + 20] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let (store, _) = open(&path, g, 1000).unwrap();
        assert_eq!(store.len(), 121, "only the damaged record is lost");
        assert_eq!(store.at(1000).unwrap().safe, id(122));
        assert_eq!(fs::metadata(&path).unwrap().len() as usize, len - SET_LEN);
        let _ = fs::remove_dir_all(&dir);
    }
}
