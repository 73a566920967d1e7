//! The Engine API JWT secret file: 32 bytes hex, generated when absent or empty (as op-node does
//! for `--l2.jwt-secret`). The tokens themselves are `protocol::jwt`.

use std::io::Read;
use std::path::Path;

/// Reads the JWT secret file; when it is absent or empty, generates a secret and writes it
/// (0600), as op-node does for `--l2.jwt-secret`.
pub fn load_or_create_secret(path: &Path) -> Result<[u8; 32], String> {
    let text = match super::files::read_to_string(path, super::files::MAX_SMALL_FILE) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("failed to read JWT secret {}: {e}", path.display())),
    };
    let text = text.trim();
    if text.is_empty() {
        let mut secret = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut secret))
            .map_err(|e| format!("failed to generate JWT secret: {e}"))?;
        write_secret(path, &secret)?;
        log::warn!("generated a new JWT secret at {}; the engine must use the same file", path.display());
        return Ok(secret);
    }
    crate::protocol::primitives::from_hex_fixed::<32>(text)
        .map_err(|e| format!("invalid JWT secret in {}: {e} (want 32 bytes hex)", path.display()))
}

fn write_secret(path: &Path, secret: &[u8; 32]) -> Result<(), String> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(|e| format!("failed to write JWT secret {}: {e}", path.display()))?;
    writeln!(f, "{}", crate::protocol::primitives::to_hex_prefixed(secret)).map_err(|e| e.to_string())
}
