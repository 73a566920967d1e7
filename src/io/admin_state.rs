//! `--rpc.admin-state`: the sequencer's started/stopped state, persisted across restarts in
//! op-node's format (`{"sequencerStarted":true}`), written to a temporary file, synced and
//! renamed into place so a crash never leaves a torn file.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Persisted {
    sequencer_started: Option<bool>,
}

/// The persisted state: `None` when the file does not exist yet.
pub fn read(path: &Path) -> Result<Option<bool>, String> {
    let data = match super::files::read(path, super::files::MAX_SMALL_FILE) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("read config file ({}): {e}", path.display())),
    };
    let p: Persisted = serde_json::from_slice(&data)
        .map_err(|e| format!("invalid config file ({}): {e}", path.display()))?;
    match p.sequencer_started {
        Some(v) => Ok(Some(v)),
        None => Err(format!("missing sequencerStarted value in config file ({})", path.display())),
    }
}

/// Persists the state (op-node `ActiveConfigPersistence.persist`).
pub fn write(path: &Path, sequencer_started: bool) -> Result<(), String> {
    let data = serde_json::to_vec(&Persisted { sequencer_started: Some(sequencer_started) })
        .map_err(|e| format!("marshall new config: {e}"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("create config dir ({}): {e}", path.display()))?;
    }
    super::files::write_atomic(path, &data)
        .map_err(|e| format!("write new config to ({}): {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_absent_and_invalid_files() {
        let dir = std::env::temp_dir().join(format!("op-lite-admin-state-{}", std::process::id()));
        let path = dir.join("nested").join("admin.json");
        assert_eq!(read(&path), Ok(None));
        write(&path, true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), r#"{"sequencerStarted":true}"#);
        assert_eq!(read(&path), Ok(Some(true)));
        write(&path, false).unwrap();
        assert_eq!(read(&path), Ok(Some(false)));
        for bad in ["{}", r#"{"sequencerStarted":true,"x":1}"#, "not json", r#"{"sequencerStarted":"yes"}"#] {
            fs::write(&path, bad).unwrap();
            assert!(read(&path).is_err(), "{bad}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
