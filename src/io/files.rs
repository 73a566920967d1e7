//! Files the commands read and write outside the node's own stores: bounded reads of input
//! files (a config, a fixture or a key cannot make the process hold more than its limit), and
//! the devnet's temporary files.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest `--rollup.config` / `--rollup.l1-chain-config` file read (op-node's largest
/// rollup.json is a few KB).
pub const MAX_CONFIG_FILE: u64 = 1 << 20;

/// Largest secret file read: the JWT secret (`--l2.jwt-secret`), the P2P identity key
/// (`--p2p.priv.path`), the sequencer's admin state (`--rpc.admin-state`); each holds under 100
/// bytes.
pub const MAX_SMALL_FILE: u64 = 4 << 10;

/// Reads at most `max` bytes of `path` (`-`: stdin); a longer input is an error of kind
/// `FileTooLarge`. A device that never ends (`/dev/zero`) stops at the limit too.
pub fn read(path: impl AsRef<Path>, max: u64) -> std::io::Result<Vec<u8>> {
    let path = path.as_ref();
    let mut buf = Vec::new();
    // One byte over the limit tells an input at the limit from a larger one.
    if path == Path::new("-") {
        std::io::stdin().lock().take(max + 1).read_to_end(&mut buf)?;
    } else {
        std::fs::File::open(path)?.take(max + 1).read_to_end(&mut buf)?;
    }
    if buf.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(buf)
}

/// Opens `path` (`-`: standard input) for reading at most `max` bytes, for a parser that
/// streams: a file larger than `max` is refused before reading; standard input is cut at
/// `max + 1` bytes, which the parser then reports as malformed.
pub fn open(path: impl AsRef<Path>, max: u64) -> std::io::Result<Box<dyn Read>> {
    let path = path.as_ref();
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufReader::new(std::io::stdin().take(max + 1))));
    }
    let f = std::fs::File::open(path)?;
    if f.metadata()?.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(Box::new(std::io::BufReader::with_capacity(64 << 10, f.take(max))))
}

/// Reads at most `max` bytes of UTF-8 text.
pub fn read_to_string(path: impl AsRef<Path>, max: u64) -> std::io::Result<String> {
    String::from_utf8(read(path, max)?).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes `data` to `path` so that a crash or power loss leaves either the old file or the
/// new one, never a torn one: a temporary file beside it, synced, then renamed into place.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Writes `data` to `path`, replacing it.
pub fn write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

/// Creates directory `path` and its parents.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

/// Removes directory `path` and what it holds, if it exists.
pub fn remove_dir_all(path: &Path) {
    let _ = std::fs::remove_dir_all(path);
}

/// Whether `path` exists.
pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Removes `path` if it exists.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// A path in the system's temporary directory.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let path = temp_path(&format!("op-lite-files-test-{}", std::process::id()));
        write(&path, b"0123456789").unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(read(p, 10).unwrap(), b"0123456789");
        assert!(read(p, 9).is_err());
        assert_eq!(read_to_string(p, 10).unwrap(), "0123456789");
        write(&path, &[0xff, 0xfe]).unwrap();
        assert!(read_to_string(p, 10).is_err());
        remove(&path);
        assert!(read(p, 10).is_err());
        remove(&path);
        let zero = read("/dev/zero", 4096).unwrap_err();
        assert_eq!(zero.kind(), std::io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn streamed_reads_are_bounded() {
        let path = temp_path(&format!("op-lite-files-open-{}", std::process::id()));
        write(&path, b"0123456789").unwrap();
        let mut s = String::new();
        open(&path, 10).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "0123456789");
        assert_eq!(open(&path, 9).err().unwrap().kind(), std::io::ErrorKind::FileTooLarge);
        remove(&path);
        assert!(open(&path, 10).is_err());
        // A device of no size cannot claim more than it gives: the reader stops at the bound.
        let mut buf = Vec::new();
        open("/dev/zero", 4096).unwrap().read_to_end(&mut buf).unwrap();
        assert_eq!(buf.len(), 4096);
    }
}
