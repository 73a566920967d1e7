//! Version metadata embedded by `build.rs` (op-node's `VersionWithMeta`).

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Short git commit of the build, or "unknown".
pub const GIT_COMMIT: &str = env!("OP_LITE_GIT_COMMIT");
/// Target triple the binary was built for.
pub const TARGET: &str = env!("OP_LITE_TARGET");
/// `v0.1.0-<commit>[-dirty]`, like op-node's `v1.2.3-<commit>` version string.
pub const VERSION_WITH_META: &str =
    concat!("v", env!("CARGO_PKG_VERSION"), "-", env!("OP_LITE_GIT_COMMIT"), env!("OP_LITE_GIT_DIRTY"));

/// The `--version` line.
pub fn long_version() -> String {
    format!("op-lite version {VERSION_WITH_META} ({TARGET})")
}
